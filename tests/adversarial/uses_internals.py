"""Uses torch's internals by name (the raw softmax kernel from torch._C); the static check
flags them in every topic before any code runs.
Expect: forbidden | torch._C
"""
import torch


def softmax(x, dim=-1):
    return torch._C._VariableFunctions._softmax(x, dim, False)


attention_weights = scaled_dot_product_attention = softmax
