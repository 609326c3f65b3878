# Exercise stub: fill in each function, then run `seqlings check sdpa`.
"""Scaled dot-product attention, written out by hand.

Matches ``torch.softmax`` and ``torch.nn.functional.scaled_dot_product_attention``
(dropout_p=0): https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html
Vaswani et al. 2017, "Attention Is All You Need", section 3.2.1.

Shapes: ... any leading batch dims, L query length, S key length,
E query/key dim, Ev value dim.
"""

from __future__ import annotations

import math

import torch


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax along ``dim``; equals ``torch.softmax(x, dim)``.

    Stable for inputs of magnitude 1e4. A slice that is entirely -inf gives
    nan, exactly as ``torch.softmax`` does.
    """
    # TODO: subtract the max along `dim`, exponentiate, divide by the sum along `dim`.
    # Shapes: x (B, L, S) -> (B, L, S)
    raise NotImplementedError


def attention_weights(query: torch.Tensor, key: torch.Tensor, attn_mask: torch.Tensor | None = None,
                      is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """The (..., L, S) softmax matrix that ``scaled_dot_product_attention`` applies to the values.

    A query row whose keys are all masked out gets a row of zeros (not nan),
    as PyTorch's own attention does.
    """
    # TODO: scores = Q K^T * scale, apply the mask (bool: -inf where False; float: add),
    #       softmax over S, zero fully masked rows.
    # Shapes: (..., L, E), (..., S, E) -> (..., L, S)
    raise NotImplementedError


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attn_mask: torch.Tensor | None = None, is_causal: bool = False,
                                 scale: float | None = None) -> torch.Tensor:
    """softmax(Q K^T * scale + mask) V; mirrors ``F.scaled_dot_product_attention`` with dropout_p=0.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).
    A bool ``attn_mask`` is True where attention is allowed; a float one is
    added to the scores; both broadcast to (..., L, S).
    """
    # TODO: the attention weights times the values.
    # Shapes: (..., L, S) @ (..., S, Ev) -> (..., L, Ev)
    raise NotImplementedError
