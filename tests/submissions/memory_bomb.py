"""Allocates far more memory than any exercise needs."""
import torch


def softmax(x, dim=-1):
    blocks = []
    while True:
        blocks.append(torch.ones(1 << 28))


attention_weights = scaled_dot_product_attention = softmax
