"""Replaces builtins (abs, max, isinstance, float) that a grader might use to compare.

They change only in the submission's own process, which they break: the grader
reports that the process ended.
Expect: error/failed | ended the process
"""
import builtins

import torch

builtins.abs = lambda x: 0
builtins.max = lambda *a, **k: 0
builtins.all = lambda *a: True
builtins.isinstance = lambda obj, cls: True
builtins.float = lambda *a: 0.0


def softmax(x, dim=-1):
    return torch.full_like(x, 0.5)


attention_weights = scaled_dot_product_attention = softmax
