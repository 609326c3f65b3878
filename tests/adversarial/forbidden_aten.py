"""Calls the kernels under the off-limits functions: torch.ops.aten.*, torch._softmax and
torch._C builtins, none of which is a name on the forbidden list. The modules are reached
through names built at run time, so only the run-time guard can see them.
Expect: forbidden | off limits
"""
import torch

ops = getattr(torch, "".join(["o", "ps"]))
_C = getattr(torch, "_" + "C")


def softmax(x, dim=-1):
    return ops.aten._softmax(x, dim, False)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    scores = query @ key.transpose(-2, -1) * (scale or query.shape[-1] ** -0.5)
    return _C._VariableFunctions._softmax(scores, -1, False)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    out, _ = ops.aten._scaled_dot_product_attention_math.default(query, key, value, attn_mask, 0.0,
                                                                       is_causal, scale=scale)
    return out
