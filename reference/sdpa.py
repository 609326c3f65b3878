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
    # Subtract the max so exp never overflows; the result is unchanged
    # because softmax is invariant to adding a constant.
    shifted = x - x.amax(dim=dim, keepdim=True)  # same shape as x
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _scores(query: torch.Tensor, key: torch.Tensor, attn_mask: torch.Tensor | None,
            is_causal: bool, scale: float | None) -> torch.Tensor:
    """Scaled, masked attention logits (..., L, S); -inf where attention is not allowed."""
    assert not (is_causal and attn_mask is not None), "pass attn_mask or is_causal, not both"
    L, E = query.shape[-2], query.shape[-1]
    S = key.shape[-2]
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    # (..., L, E) @ (..., E, S) -> (..., L, S)
    scores = query @ key.transpose(-2, -1) * scale
    if is_causal:
        # Top-left aligned: query i sees keys 0..i, also when L != S.
        attn_mask = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()  # (L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            # Bool masks say where attention is allowed (True = attend).
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask  # float masks are added to the logits
    return scores


def attention_weights(query: torch.Tensor, key: torch.Tensor, attn_mask: torch.Tensor | None = None,
                      is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """The (..., L, S) softmax matrix that ``scaled_dot_product_attention`` applies to the values.

    A query row whose keys are all masked out gets a row of zeros (not nan),
    as PyTorch's own attention does.
    """
    scores = _scores(query, key, attn_mask, is_causal, scale)  # (..., L, S)
    if attn_mask is None and not is_causal:
        # With no mask no row can be empty: skip the three extra passes over the scores below.
        return softmax(scores, dim=-1)
    # Rows with nothing to attend to would be 0/0; give them zeros instead,
    # and keep their logits finite so the backward pass stays finite too.
    empty = scores.eq(float("-inf")).all(dim=-1, keepdim=True)  # (..., L, 1)
    weights = softmax(scores.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attn_mask: torch.Tensor | None = None, is_causal: bool = False,
                                 scale: float | None = None) -> torch.Tensor:
    """softmax(Q K^T * scale + mask) V; mirrors ``F.scaled_dot_product_attention`` with dropout_p=0.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).
    A bool ``attn_mask`` is True where attention is allowed; a float one is
    added to the scores; both broadcast to (..., L, S).
    """
    weights = attention_weights(query, key, attn_mask, is_causal, scale)  # (..., L, S)
    # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)
    return weights @ value
