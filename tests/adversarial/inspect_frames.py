"""Walks the caller's frames and every object in memory looking for the expected answer.

The expected values are computed in the grader's process and never sent: there is
nothing to find. It returns the most softmax-like tensor it found, or garbage.
Expect: failed | values differ
"""
import gc
import sys

import torch


def softmax(x, dim=-1):
    frame, found = sys._getframe(1), []
    while frame is not None:
        for name, value in frame.f_locals.items():
            if isinstance(value, torch.Tensor) and value.shape == x.shape and value is not x:
                found.append(value)
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.shape == x.shape and obj is not x:
            found.append(obj)
    rows_sum_to_one = [t for t in found if t.is_floating_point()
                       and torch.all((t.sum(dim) - 1).abs() < 1e-6)]
    return (rows_sum_to_one or [torch.zeros_like(x)])[0].detach().clone()


attention_weights = scaled_dot_product_attention = softmax
