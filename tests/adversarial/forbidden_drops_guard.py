"""Pops the grader's torch function mode off the stack, then calls the built-in softmax.
Expect: forbidden | guard
"""
import torch

_C = getattr(torch, "_" + "C")  # a built name: only the run-time guard can see what follows


def softmax(x, dim=-1):
    while _C._len_torch_function_stack():
        _C._pop_torch_function_stack()
    return getattr(_C._VariableFunctions, "soft" + "max")(x, dim)


attention_weights = scaled_dot_product_attention = softmax
