"""The version from the course notes: Python floats, an `if`, two passes over the parameters.

It sums ``norm.item() ** p`` in Python, multiplies only when the factor is
below 1, walks ``parameters`` once for the norm and again to clip (so a
generator is empty the second time), and returns ``torch.tensor(total)``
(float32, whatever the gradients' dtype).

Expect: `parameters` was iterated twice
"""

from __future__ import annotations

from typing import Iterable

import torch


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> torch.Tensor:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            total += p.grad.norm(norm_type).item() ** norm_type
    total = total ** (1.0 / norm_type)
    if error_if_nonfinite and (total != total or total == float("inf")):
        raise RuntimeError("non-finite total norm")
    clip_coef = max_norm / (total + 1e-6)
    if clip_coef < 1:
        for p in parameters:
            if p.grad is not None:
                p.grad.mul_(clip_coef)
    return torch.tensor(total)


def clip_grad_value(parameters: Iterable[torch.Tensor], clip_value: float) -> None:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)
