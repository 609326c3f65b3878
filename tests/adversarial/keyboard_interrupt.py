"""Raises KeyboardInterrupt, which a careless harness treats as the user stopping the run.
Expect: error | KeyboardInterrupt
"""


def softmax(x, dim=-1):
    raise KeyboardInterrupt


attention_weights = scaled_dot_product_attention = softmax
