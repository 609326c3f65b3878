"""Multi-head attention through F.scaled_dot_product_attention, with bool masks passed straight in.

F.scaled_dot_product_attention reads a bool mask as True = MAY attend, nn.MultiheadAttention as
True = BLOCKED (errata 10), so every bool mask here means the opposite of what the caller meant.
Expect: key_padding_mask inverted
"""

import math

import torch
import torch.nn.functional as F


def sinusoidal_positional_encoding(max_len, d_model):
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    j = torch.arange(d_model)
    angle = pos / 10000 ** ((j - j % 2) / d_model)
    return torch.where(j % 2 == 0, angle.sin(), angle.cos()).float()


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def feed_forward(x, w1, b1, w2, b2):
    return F.relu(x @ w1.T + b1) @ w2.T + b2


def multi_head_attention(query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight,
                         out_proj_bias, key_padding_mask=None, attn_mask=None):
    B, L, D = query.shape
    S, H, E = key.shape[1], num_heads, D // num_heads
    wq, wk, wv = in_proj_weight.chunk(3)
    bq, bk, bv = in_proj_bias.chunk(3)
    q = F.linear(query, wq, bq).view(B, L, H, E).transpose(1, 2)
    k = F.linear(key, wk, bk).view(B, S, H, E).transpose(1, 2)
    v = F.linear(value, wv, bv).view(B, S, H, E).transpose(1, 2)
    mask = None
    for m, shape in ((attn_mask, None), (key_padding_mask, (B, 1, 1, S))):
        if m is None:
            continue
        m = m.view(B, H, L, S) if m.dim() == 3 else m.view(shape) if shape else m
        if mask is None:
            mask = m
        elif mask.dtype == torch.bool and m.dtype == torch.bool:
            mask = mask & m
        else:
            mask = (mask if mask.dtype != torch.bool else torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, -math.inf)) \
                + (m if m.dtype != torch.bool else torch.zeros(m.shape, dtype=q.dtype).masked_fill(~m, -math.inf))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = q @ k.transpose(-2, -1) / math.sqrt(E)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else scores + mask
    weights = scores.softmax(-1)
    out = out.transpose(1, 2).reshape(B, L, D)
    return F.linear(out, out_proj_weight, out_proj_bias), weights.mean(1)


def causal_mask(size):
    return torch.full((size, size), float("-inf")).triu(1)


def _block(x, kv, p, prefix, nh, **masks):
    return multi_head_attention(x, kv, kv, nh, p[prefix + "in_proj_weight"], p[prefix + "in_proj_bias"],
                                p[prefix + "out_proj.weight"], p[prefix + "out_proj.bias"], **masks)[0]


def _ln(x, p, i):
    return layer_norm(x, p[f"norm{i}.weight"], p[f"norm{i}.bias"])


def _ff(x, p):
    return feed_forward(x, p["linear1.weight"], p["linear1.bias"], p["linear2.weight"], p["linear2.bias"])


def encoder_layer(x, params, num_heads, src_key_padding_mask=None, norm_first=False):
    sa = lambda h: _block(h, h, params, "self_attn.", num_heads, key_padding_mask=src_key_padding_mask)  # noqa: E731
    if norm_first:
        x = x + sa(_ln(x, params, 1))
        return x + _ff(_ln(x, params, 2), params)
    x = _ln(x + sa(x), params, 1)
    return _ln(x + _ff(x, params), params, 2)


def decoder_layer(x, memory, params, num_heads, tgt_mask=None, memory_key_padding_mask=None, norm_first=False):
    sa = lambda h: _block(h, h, params, "self_attn.", num_heads, attn_mask=tgt_mask)  # noqa: E731
    ca = lambda h: _block(h, memory, params, "multihead_attn.", num_heads,  # noqa: E731
                          key_padding_mask=memory_key_padding_mask)
    if norm_first:
        x = x + sa(_ln(x, params, 1))
        x = x + ca(_ln(x, params, 2))
        return x + _ff(_ln(x, params, 3), params)
    x = _ln(x + sa(x), params, 1)
    x = _ln(x + ca(x), params, 2)
    return _ln(x + _ff(x, params), params, 3)
