"""A correct transformer in another style: a loop over heads with per-head weight slices,
F.scaled_dot_product_attention for each head's output (its bool masks mean the opposite,
so masks are converted to float first), Python-math positional encoding returned in float64."""

import math

import torch
import torch.nn.functional as F


def sinusoidal_positional_encoding(max_len, d_model):
    rows = []
    for pos in range(max_len):
        row = []
        for j in range(d_model):
            angle = pos / 10000 ** ((j - j % 2) / d_model)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).reshape(max_len, d_model)


def layer_norm(x, weight, bias, eps=1e-5):
    n = x.shape[-1]
    mu = x.sum(-1, keepdim=True) / n
    d = x - mu
    sigma2 = (d ** 2).sum(-1, keepdim=True) / n
    return weight * d / (sigma2 + eps) ** 0.5 + bias


def feed_forward(x, w1, b1, w2, b2):
    h = torch.clamp(torch.matmul(x, w1.transpose(0, 1)) + b1, min=0)
    return torch.matmul(h, w2.transpose(0, 1)) + b2


def _to_float(mask, dtype):
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -math.inf)


def multi_head_attention(query, key, value, num_heads, in_proj_weight, in_proj_bias, out_proj_weight,
                         out_proj_bias, key_padding_mask=None, attn_mask=None):
    B, L, D = query.shape
    S = key.shape[1]
    E = D // num_heads
    am = _to_float(attn_mask, query.dtype)
    kpm = _to_float(key_padding_mask, query.dtype)
    outs, probs = [], []
    for h in range(num_heads):
        rows = slice(h * E, (h + 1) * E)
        q = query @ in_proj_weight[rows].T + in_proj_bias[rows]
        k = key @ in_proj_weight[D:][rows].T + in_proj_bias[D:][rows]
        v = value @ in_proj_weight[2 * D:][rows].T + in_proj_bias[2 * D:][rows]
        bias = torch.zeros(B, L, S, dtype=query.dtype, device=query.device)
        if am is not None:
            bias = bias + (am.reshape(B, num_heads, L, S)[:, h] if am.dim() == 3 else am)
        if kpm is not None:
            bias = bias + kpm[:, None, :]
        outs.append(F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
        probs.append(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(E) + bias, dim=-1))
    o = torch.cat(outs, dim=-1) @ out_proj_weight.T + out_proj_bias
    return o, sum(probs) / num_heads


def causal_mask(size):
    m = torch.zeros(size, size)
    for i in range(size):
        for j in range(i + 1, size):
            m[i, j] = float("-inf")
    return m


def encoder_layer(x, params, num_heads, src_key_padding_mask=None, norm_first=False):
    def sa(h):
        return multi_head_attention(h, h, h, num_heads, params["self_attn.in_proj_weight"],
                                    params["self_attn.in_proj_bias"], params["self_attn.out_proj.weight"],
                                    params["self_attn.out_proj.bias"], key_padding_mask=src_key_padding_mask)[0]

    def norm(h, n):
        return layer_norm(h, params[f"norm{n}.weight"], params[f"norm{n}.bias"])

    def ff(h):
        return feed_forward(h, params["linear1.weight"], params["linear1.bias"],
                            params["linear2.weight"], params["linear2.bias"])

    if not norm_first:
        h = norm(x + sa(x), 1)
        return norm(h + ff(h), 2)
    h = x + sa(norm(x, 1))
    return h + ff(norm(h, 2))


def decoder_layer(x, memory, params, num_heads, tgt_mask=None, memory_key_padding_mask=None, norm_first=False):
    def attn(prefix, h, kv, **masks):
        return multi_head_attention(h, kv, kv, num_heads, params[prefix + ".in_proj_weight"],
                                    params[prefix + ".in_proj_bias"], params[prefix + ".out_proj.weight"],
                                    params[prefix + ".out_proj.bias"], **masks)[0]

    def norm(h, n):
        return layer_norm(h, params[f"norm{n}.weight"], params[f"norm{n}.bias"])

    def ff(h):
        return feed_forward(h, params["linear1.weight"], params["linear1.bias"],
                            params["linear2.weight"], params["linear2.bias"])

    steps = [
        lambda h: attn("self_attn", h, h, attn_mask=tgt_mask),
        lambda h: attn("multihead_attn", h, memory, key_padding_mask=memory_key_padding_mask),
        ff,
    ]
    for n, step in enumerate(steps, start=1):
        x = x + step(norm(x, n)) if norm_first else norm(x + step(x), n)
    return x
