"""Builds the forbidden call as a string and runs it with eval and exec.
Expect: forbidden | off limits
"""
import base64

import torch  # noqa: F401 - used by the evaluated strings

_CODE = base64.b64decode(b"dG9yY2guc29mdG1heA==").decode()  # "torch.softmax"


def softmax(x, dim=-1):
    return eval(_CODE)(x, dim)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    scope = {"q": query, "k": key}
    exec("import torch\nout = torch.nn.functional.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, -1)", scope)
    return scope["out"]


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return eval("torch.nn.functional.scaled_dot_product_attention")(query, key, value, attn_mask=attn_mask,
                                                                     is_causal=is_causal, scale=scale)
