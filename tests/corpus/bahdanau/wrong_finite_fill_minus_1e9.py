"""Pads filled with -1e9 instead of -inf, then torch.softmax.

Fine while a row has a real position, but an all-pad row becomes a uniform
1/S over the pads instead of zeros.

Expect: the uniform weights 1/S
"""

from __future__ import annotations

import torch


def additive_scores(query, keys, w_q, w_k, v):
    return torch.tanh((query @ w_q.T)[:, None, :] + keys @ w_k.T) @ v  # (B, S)


def masked_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)


def bahdanau_attention(query, keys, values, mask, w_q, w_k, v):
    weights = masked_softmax(additive_scores(query, keys, w_q, w_k, v), mask)
    return (weights[:, None, :] @ values).squeeze(1), weights


def luong_scores(query, keys, w=None):
    if w is not None:
        keys = keys @ w.T
    return (keys @ query[:, :, None]).squeeze(-1)
