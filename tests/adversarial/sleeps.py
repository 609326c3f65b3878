"""Sleeps far longer than any test allows (no CPU used, so only a wall clock catches it).
Expect: timeout | did not return
"""
import time


def softmax(x, dim=-1):
    time.sleep(3600)


attention_weights = scaled_dot_product_attention = softmax
