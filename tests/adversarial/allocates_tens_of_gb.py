"""Allocates 40 GB and touches every page.
Expect: error | memory
"""
import torch


def softmax(x, dim=-1):
    hog = torch.empty(10 * 2**30, dtype=torch.float32)
    hog.fill_(1.0)
    return hog[: x.numel()].reshape(x.shape)


attention_weights = scaled_dot_product_attention = softmax
