"""Spins forever.
Expect: timeout | did not return
"""


def softmax(x, dim=-1):
    while True:
        pass


attention_weights = scaled_dot_product_attention = softmax
