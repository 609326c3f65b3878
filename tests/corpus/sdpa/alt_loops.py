"""A correct sdpa written with explicit loops over query rows, as a first attempt often is."""

import math

import torch


def softmax(x, dim=-1):
    x = x.movedim(dim, -1)
    m = x.max(dim=-1, keepdim=True).values
    num = torch.exp(x - m)
    out = num / num.sum(-1, keepdim=True)
    return out.movedim(-1, dim)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    L, S = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1 / math.sqrt(query.shape[-1])
    bias = torch.zeros(L, S, dtype=query.dtype, device=query.device)
    if is_causal:
        for i in range(L):
            for j in range(S):
                if j > i:
                    bias[i, j] = -math.inf
    elif attn_mask is not None and attn_mask.dtype == torch.bool:
        bias = torch.zeros(attn_mask.shape, dtype=query.dtype, device=query.device).masked_fill(
            attn_mask.logical_not(), -math.inf)
    elif attn_mask is not None:
        bias = attn_mask
    rows = []
    for i in range(L):
        s = (query[..., i:i + 1, :] * key).sum(-1) * scale + bias[..., i, :]   # (..., S)
        if s.dim() < query.dim() - 1:
            s = s.expand(*torch.broadcast_shapes(s.shape, query.shape[:-2] + (S,)))
        dead = torch.isinf(s).logical_and(s < 0).all(-1, keepdim=True)
        w = softmax(s.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
        rows.append(w)
    return torch.stack(rows, dim=-2)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return attention_weights(query, key, attn_mask, is_causal, scale) @ value
