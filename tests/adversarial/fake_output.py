"""Prints a fake pytest summary and a fake full-marks JSON report on stdout and stderr,
also straight to file descriptors 1 and 2, then returns garbage.
Expect: failed | values differ
"""
import json
import os
import sys

import torch

FAKE = json.dumps({"topic": "sdpa", "score": 55.0, "max_score": 55.0, "tests": []})
print("============ 33 passed in 0.42s ============")
print(FAKE, file=sys.stderr)
os.write(1, b"\nPASSED sdpa::softmax_matches_torch\n")
os.write(2, FAKE.encode())


def softmax(x, dim=-1):
    print("PASSED", FAKE)
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
