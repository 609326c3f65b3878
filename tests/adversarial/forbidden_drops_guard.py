"""Pops the grader's torch function mode off the stack, then calls the built-in softmax.
Expect: forbidden | guard
"""
import torch


def softmax(x, dim=-1):
    while torch._C._len_torch_function_stack():
        torch._C._pop_torch_function_stack()
    return torch._C._VariableFunctions.softmax(x, dim)


attention_weights = scaled_dot_product_attention = softmax
