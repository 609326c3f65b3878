"""Finds the original softmax among torch._C's builtins by walking the module by value
(torch._C itself reached under a built name, out of the static check's sight).
Expect: forbidden | off limits
"""
import torch

_C = getattr(torch, "_" + "C")
_VF = _C._VariableFunctions
_SOFTMAX = next(getattr(_VF, k) for k in dir(_VF) if k == "softmax")
_NN = {k: getattr(_C._nn, k) for k in dir(_C._nn)}


def softmax(x, dim=-1):
    return _SOFTMAX(x, dim)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    scores = query @ key.transpose(-2, -1) * (scale or query.shape[-1] ** -0.5)
    return _SOFTMAX(scores, -1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return _NN["scaled_dot_product_attention"](query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                                               scale=scale)
