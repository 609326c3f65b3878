"""Reaches the off-limits softmax through getattr with a name built at run time.
Expect: forbidden | off limits
"""
import torch
import torch.nn.functional as F

_NAME = "".join(["soft", "max"])


def softmax(x, dim=-1):
    return getattr(F, _NAME)(x, dim=dim)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    scores = query @ key.transpose(-2, -1) * (scale or query.shape[-1] ** -0.5)
    return getattr(torch, _NAME)(scores, -1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return getattr(F, "scaled_dot_product_" + "attention")(query, key, value, attn_mask=attn_mask,
                                                         is_causal=is_causal, scale=scale)
