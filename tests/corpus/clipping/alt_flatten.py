"""Correct alternative: concatenate every gradient into one vector and take its norm directly."""

from __future__ import annotations

import math

import torch


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if len(grads) == 0:
        return torch.tensor(0.0)
    flat = torch.cat([g.detach().reshape(-1) for g in grads])  # (sum_i numel_i,)
    if float(norm_type) == math.inf:
        total = flat.abs().max()
    else:
        total = torch.linalg.vector_norm(flat, float(norm_type))
    if error_if_nonfinite and (total.isnan() or total.isinf()):
        raise RuntimeError(f"total norm {total.item()} is not finite")
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    with torch.no_grad():
        for g in grads:
            g.mul_(coef)
    return total


def clip_grad_value(parameters, clip_value):
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                torch.clamp(p.grad, -clip_value, clip_value, out=p.grad)
