"""Additive attention one (b, j) pair at a time: the paper's formulas, literally.

Scores with matrix-vector products W q (weights as (out, in)), the softmax by
torch.softmax over each row's real positions, the context as an explicit sum.
"""

from __future__ import annotations

import torch


def additive_scores(query, keys, w_q, w_k, v):
    B, S, _ = keys.shape
    out = query.new_zeros(B, S)
    rows = []
    for b in range(B):
        wq = w_q @ query[b]  # (A,)
        rows.append(torch.stack([torch.dot(v, torch.tanh(wq + w_k @ keys[b, j])) for j in range(S)]))
    return torch.stack(rows) if B else out


def masked_softmax(scores, mask):
    rows = []
    for b in range(scores.shape[0]):
        real = mask[b].nonzero().flatten()
        row = torch.zeros_like(scores[b])
        if real.numel():
            row = row.index_put((real,), torch.softmax(scores[b, real], dim=0))
        rows.append(row)
    return torch.stack(rows)


def bahdanau_attention(query, keys, values, mask, w_q, w_k, v):
    weights = masked_softmax(additive_scores(query, keys, w_q, w_k, v), mask)
    B, S, Dv = values.shape
    context = []
    for b in range(B):
        c = values.new_zeros(Dv)
        for j in range(S):
            c = c + weights[b, j] * values[b, j]
        context.append(c)
    return torch.stack(context), weights


def luong_scores(query, keys, w=None):
    B, S, _ = keys.shape
    return torch.stack([torch.stack([torch.dot(query[b], keys[b, j] if w is None else w @ keys[b, j])
                                     for j in range(S)]) for b in range(B)])
