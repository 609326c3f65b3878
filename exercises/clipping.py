# Exercise stub: fill in each function, then run `seqlings check clipping`.
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
    # TODO: gather the gradients, take one global norm over all of them, scale each in
    #       place by min(1, max_norm / (norm + 1e-6)), return the norm.
    # Shapes: grads [(P_i,)] -> total_norm ()
    raise NotImplementedError


@torch.no_grad()
def clip_grad_value(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient in place to ``[-clip_value, clip_value]``; returns None.

    Mirrors ``torch.nn.utils.clip_grad_value_``: a tensor or an iterable of
    tensors, parameters whose ``.grad`` is None skipped, parameter values untouched.
    """
    # TODO: clamp every gradient in place to [-clip_value, clip_value].
    # Shapes: grads [(P_i,)] -> None
    raise NotImplementedError
