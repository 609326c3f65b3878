"""Gradient clipping by global norm and by value, written out by hand.

Matches ``torch.nn.utils.clip_grad_norm_`` and ``torch.nn.utils.clip_grad_value_``:
https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html
Pascanu, Mikolov, Bengio 2013, "On the difficulty of training recurrent neural
networks", section 3.2 (clipping the norm of the whole gradient).

Shapes: N parameters that have a gradient, P_i the shape of parameter i (any
shape, scalars included). A gradient has its parameter's shape.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

Parameters = torch.Tensor | Iterable[torch.Tensor]


def _grads(parameters: Parameters) -> list[torch.Tensor]:
    """The existing ``.grad`` tensors of ``parameters`` (a single tensor counts as one parameter)."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    # One pass only: model.parameters() is a generator, empty the second time.
    return [p.grad for p in parameters if p.grad is not None]  # N x (P_i)


def _total_norm(grads: list[torch.Tensor], norm_type: float) -> torch.Tensor:
    """The p-norm of all gradients seen as one long vector."""
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])  # (N,)
    if norm_type == math.inf:
        # The largest |g| anywhere is the largest of the per-tensor largest |g|.
        return norms.amax()  # ()
    # ||concat(g_1, .., g_N)||_p = (sum_i ||g_i||_p^p)^(1/p): the p-norm of the per-tensor p-norms.
    return norms.pow(norm_type).sum().pow(1.0 / norm_type)  # ()


@torch.no_grad()
def clip_grad_norm(parameters: Parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> torch.Tensor:
    """Scale all gradients in place so that their global ``norm_type``-norm is at most ``max_norm``.

    Mirrors ``torch.nn.utils.clip_grad_norm_``. ``parameters`` is a tensor or an
    iterable of tensors (a one-shot generator such as ``model.parameters()``
    works); parameters whose ``.grad`` is None are skipped. The total norm is
    the norm of every gradient together (``norm_type`` any positive float or
    ``inf``); every gradient is multiplied in place by the same factor
    ``min(1, max_norm / (total_norm + 1e-6))``. Parameter values are untouched.

    Returns the total norm before clipping as a 0-d tensor of the gradients'
    dtype and device; ``torch.tensor(0.)`` when there is no gradient at all.
    With ``error_if_nonfinite=True`` a nan or inf total norm raises
    ``RuntimeError`` before any gradient changes.
    """
    grads = _grads(parameters)  # N x (P_i)
    norm_type = float(norm_type)
    if not grads:
        return torch.tensor(0.0)  # what PyTorch returns: float32, on the CPU
    total = _total_norm(grads, norm_type)  # ()
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total.item()}, "
                           "so they cannot be clipped; pass error_if_nonfinite=False to scale them anyway")
    # One factor for all gradients keeps the update's direction; the cap at 1
    # never scales gradients up; 1e-6 keeps the division finite when total is 0.
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)  # ()
    # Always multiply, as PyTorch does: an `if coef < 1` would stall a GPU on a
    # sync, and a nan norm must make the gradients nan, not leave them alone.
    for g in grads:
        g.mul_(coef)  # (P_i)
    return total


@torch.no_grad()
def clip_grad_value(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient in place to ``[-clip_value, clip_value]``; returns None.

    Mirrors ``torch.nn.utils.clip_grad_value_``: a tensor or an iterable of
    tensors, parameters whose ``.grad`` is None skipped, parameter values untouched.
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)  # (P_i)
