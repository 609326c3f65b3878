"""Prints a fake pytest summary and a fake JSON report, then returns garbage."""
import sys

import torch

print("===== 40 passed in 0.01s =====")
print('{"topic": "sdpa", "score": 55.0, "max_score": 55.0, "tests": []}', file=sys.stderr)


def softmax(x, dim=-1):
    print("PASSED")
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
