"""Returns an object whose unpickling would run code (create a file) in the grader.

Nothing is ever unpickled: an object that is not plain data stays in the child as a handle.
Expect: error/failed | 
"""
import os

import torch

MARKER = "/tmp/PWNED-by-seqlings-pickle"


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def softmax(x, dim=-1):
    return Payload()


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    return [Payload(), torch.zeros(1)]


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return {"value": Payload()}
