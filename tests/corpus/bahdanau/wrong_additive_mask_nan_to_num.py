"""Additive -inf mask, torch.softmax, then nan_to_num to hide the all-pad rows.

The values come out right (an all-pad row becomes zeros), but the nan stays
in the backward pass: the additive mask passes the softmax's nan gradient
straight back to the scores.

Expect: nan at
"""

from __future__ import annotations

import torch


def additive_scores(query, keys, w_q, w_k, v):
    return torch.tanh((query @ w_q.T)[:, None, :] + keys @ w_k.T) @ v  # (B, S)


def masked_softmax(scores, mask):
    bias = torch.zeros_like(scores).masked_fill(~mask, float("-inf"))  # 0 at real, -inf at pads
    return torch.nan_to_num(torch.softmax(scores + bias, dim=-1), nan=0.0)


def bahdanau_attention(query, keys, values, mask, w_q, w_k, v):
    weights = masked_softmax(additive_scores(query, keys, w_q, w_k, v), mask)
    return torch.einsum("bs,bsd->bd", weights, values), weights


def luong_scores(query, keys, w=None):
    if w is not None:
        keys = keys @ w.T
    return torch.einsum("bh,bsh->bs", query, keys)
