"""A correct transformer in another style: one fused in-projection, einsum, var_mean, the float32 tutorial PE."""

import math

import torch
import torch.nn.functional as F


def sinusoidal_positional_encoding(max_len, d_model):
    # The PyTorch tutorial's float32 version: exp(-2i * ln(10000) / d).
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
    return pe


def layer_norm(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias


def feed_forward(x, w1, b1, w2, b2):
    return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)


def multi_head_attention(query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight,
                         out_proj_bias, key_padding_mask=None, attn_mask=None):
    B, L, D = query.shape
    S = key.shape[1]
    h = num_heads
    if query is key and key is value:
        # Self-attention: one fused projection, then split into q, k, v.
        q, k, v = F.linear(query, in_proj_weight, in_proj_bias).chunk(3, dim=-1)
    else:
        w = in_proj_weight.split(D)
        b = in_proj_bias.split(D)
        q, k, v = (F.linear(t, wi, bi) for t, wi, bi in zip((query, key, value), w, b))
    q = q.unflatten(-1, (h, D // h))
    k = k.unflatten(-1, (h, D // h))
    v = v.unflatten(-1, (h, D // h))
    logits = torch.einsum("blhe,bshe->bhls", q, k) * (D // h) ** -0.5
    bias = torch.zeros(B, h, L, S, dtype=logits.dtype, device=logits.device)
    for m, shape in ((attn_mask, None), (key_padding_mask, (B, 1, 1, S))):
        if m is None:
            continue
        if m.dtype == torch.bool:
            m = torch.where(m, float("-inf"), 0.0).to(logits.dtype)
        if m.dim() == 3:
            m = m.unflatten(0, (B, h))
        bias = bias + (m.reshape(shape) if shape else m)
    p = (logits + bias).softmax(-1)
    o = torch.einsum("bhls,bshe->blhe", p, v).flatten(2)
    return F.linear(o, out_proj_weight, out_proj_bias), p.mean(1)


def causal_mask(size):
    i = torch.arange(size)
    return torch.where(i[None, :] > i[:, None], float("-inf"), 0.0)


def _mha(x, kv, p, prefix, nh, kpm=None, am=None):
    return multi_head_attention(x, kv, kv, nh, p[prefix + "in_proj_weight"], p[prefix + "in_proj_bias"],
                                p[prefix + "out_proj.weight"], p[prefix + "out_proj.bias"],
                                key_padding_mask=kpm, attn_mask=am)[0]


def _ln(x, p, i):
    return layer_norm(x, p[f"norm{i}.weight"], p[f"norm{i}.bias"])


def _ff(x, p):
    return feed_forward(x, p["linear1.weight"], p["linear1.bias"], p["linear2.weight"], p["linear2.bias"])


def encoder_layer(x, params, num_heads, src_key_padding_mask=None, norm_first=False):
    p, nh, m = params, num_heads, src_key_padding_mask
    if norm_first:
        y = _ln(x, p, 1)
        x = x + _mha(y, y, p, "self_attn.", nh, kpm=m)
        return x + _ff(_ln(x, p, 2), p)
    x = _ln(x + _mha(x, x, p, "self_attn.", nh, kpm=m), p, 1)
    return _ln(x + _ff(x, p), p, 2)


def decoder_layer(x, memory, params, num_heads, tgt_mask=None, memory_key_padding_mask=None, norm_first=False):
    p, nh = params, num_heads
    if norm_first:
        y = _ln(x, p, 1)
        x = x + _mha(y, y, p, "self_attn.", nh, am=tgt_mask)
        x = x + _mha(_ln(x, p, 2), memory, p, "multihead_attn.", nh, kpm=memory_key_padding_mask)
        return x + _ff(_ln(x, p, 3), p)
    x = _ln(x + _mha(x, x, p, "self_attn.", nh, am=tgt_mask), p, 1)
    x = _ln(x + _mha(x, memory, p, "multihead_attn.", nh, kpm=memory_key_padding_mask), p, 2)
    return _ln(x + _ff(x, p), p, 3)
