"""Imports the functional module with importlib and __import__ under built names.
Expect: forbidden | off limits
"""
import importlib

functional = importlib.import_module("torch.nn." + "functional")
torch_ = __import__("to" + "rch")


def softmax(x, dim=-1):
    return functional.softmax(x, dim=dim)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    scores = query @ key.transpose(-2, -1) * (scale or query.shape[-1] ** -0.5)
    return torch_.special.softmax(scores, -1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                                   is_causal=is_causal, scale=scale)
