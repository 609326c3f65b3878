"""Accumulates the squared norm in ``torch.zeros(())``, which is float32 whatever the gradients are.

For float64 gradients of 1e20 the float32 sum of squares overflows to inf,
so every gradient becomes 0, and the norm comes back float32.

Expect: the norm overflowed to inf, so every gradient became 0
"""

from __future__ import annotations

import math

import torch


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> torch.Tensor:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    acc = torch.zeros(())
    for g in grads:
        if norm_type == math.inf:
            acc = torch.maximum(acc, g.abs().max().float())
        else:
            acc += g.abs().pow(norm_type).sum()
    total = acc if norm_type == math.inf else acc ** (1.0 / norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError("non-finite total norm")
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
    return total.to(grads[0].dtype) if grads else total


def clip_grad_value(parameters, clip_value: float) -> None:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)
