"""Raises an ordinary exception."""


def softmax(x, dim=-1):
    raise ValueError("shapes do not line up")


attention_weights = scaled_dot_product_attention = softmax
