"""Writes hundreds of megabytes to stdout, hoping to fill the grader's disk or memory.
Expect: error | File too large
"""
import sys


def softmax(x, dim=-1):
    block = "x" * (1 << 20)
    for _ in range(400):
        sys.stdout.write(block)
        sys.stdout.flush()
    return x


attention_weights = scaled_dot_product_attention = softmax
