"""Right norm, but the factor goes through Python: min(1.0, max_norm / (total.item() + 1e-6)).

Python's min(1.0, nan) is 1.0, so a nan total norm leaves the gradients
alone, where PyTorch's clamp(nan, max=1) makes every gradient nan.

Expect: the gradients were left alone although the total norm is nan
"""

from __future__ import annotations

import torch


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> torch.Tensor:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
    total = torch.linalg.vector_norm(norms, norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError("non-finite total norm")
    coef = min(1.0, max_norm / (total.item() + 1e-6))
    for g in grads:
        g.mul_(coef)
    return total


def clip_grad_value(parameters, clip_value: float) -> None:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)
