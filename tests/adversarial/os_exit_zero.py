"""Ends its process with status 0 from inside the function (no exception to catch).
Expect: error | exit code 0
"""
import os


def softmax(x, dim=-1):
    os._exit(0)


attention_weights = scaled_dot_product_attention = softmax
