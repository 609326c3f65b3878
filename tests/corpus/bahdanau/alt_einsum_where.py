"""Vectorised with einsum, torch.where instead of -inf, and a clamped denominator.

exp is taken of (score - max over real positions) and zeroed at pads, so no
-inf ever appears; an all-pad row has a zero numerator and the denominator is
clamped to at least 1, so it gives zeros. Luong's general score as q^T W k.
"""

from __future__ import annotations

import torch


def additive_scores(query, keys, w_q, w_k, v):
    hidden = torch.tanh(torch.einsum("ah,bh->ba", w_q, query)[:, None, :]
                        + torch.einsum("ak,bsk->bsa", w_k, keys))  # (B, S, A)
    return torch.einsum("bsa,a->bs", hidden, v)


def masked_softmax(scores, mask):
    low = torch.finfo(scores.dtype).min
    row_max = torch.where(mask, scores, low).amax(dim=-1, keepdim=True).detach()  # (B, 1)
    e = torch.where(mask, torch.exp(torch.where(mask, scores - row_max, 0.0)), 0.0)
    # A row with a real position sums to at least exp(0) = 1; an all-pad row sums to 0.
    return e / e.sum(dim=-1, keepdim=True).clamp_min(1.0)


def bahdanau_attention(query, keys, values, mask, w_q, w_k, v):
    weights = masked_softmax(additive_scores(query, keys, w_q, w_k, v), mask)
    return torch.einsum("bs,bsd->bd", weights, values), weights


def luong_scores(query, keys, w=None):
    if w is None:
        return torch.einsum("bh,bsh->bs", query, keys)
    return torch.einsum("bh,hk,bsk->bs", query, w, keys)
