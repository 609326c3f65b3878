"""Correct alternative: one explicit Python loop accumulating sum |g|^p (or the running max for inf)."""

from __future__ import annotations

import math

import torch


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    if isinstance(parameters, torch.Tensor):
        parameters = (parameters,)
    p = float(norm_type)
    grads = []
    acc = None
    for param in parameters:  # the only pass over `parameters`
        g = param.grad
        if g is None:
            continue
        grads.append(g)
        part = g.detach().abs().max() if p == math.inf else g.detach().abs().pow(p).sum()
        if acc is None:
            acc = part
        elif p == math.inf:
            acc = torch.maximum(acc, part)
        else:
            acc = acc + part
    if acc is None:
        return torch.tensor(0.0)
    total = acc if p == math.inf else acc.pow(1.0 / p)
    if error_if_nonfinite and not torch.isfinite(total).item():
        raise RuntimeError("the total gradient norm is nan or inf")
    scale = max_norm / (total + 1e-6)
    scale = torch.minimum(scale, torch.ones_like(scale))  # minimum keeps a nan, like clamp
    for g in grads:
        g.copy_(g * scale)
    return total


def clip_grad_value(parameters, clip_value):
    if isinstance(parameters, torch.Tensor):
        parameters = (parameters,)
    c = float(clip_value)
    for param in parameters:
        if param.grad is not None:
            param.grad.copy_(torch.where(param.grad > c, c, torch.where(param.grad < -c, -c, param.grad)))
