"""Crashes the interpreter with a segmentation fault."""
import ctypes


def softmax(x, dim=-1):
    ctypes.string_at(0)


attention_weights = scaled_dot_product_attention = softmax
