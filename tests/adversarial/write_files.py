"""Tries to write a fake report, overwrite the hidden grader and the reference, drop files
in the kit, the temp folder and the home folder; every failure is swallowed, then garbage.

The test checks that none of these files exists or changed afterwards.
Expect: failed | values differ
"""
import os
import tempfile

import torch

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = [
    os.path.join(KIT, "grader", "checks", "test_sdpa.py"),
    os.path.join(KIT, "reference", "sdpa.py"),
    os.path.join(KIT, "PWNED-by-seqlings-adversary"),
    os.path.join(KIT, ".seqlings", "PWNED-by-seqlings-adversary"),
    os.path.join(tempfile.gettempdir(), "..", "tmp", "PWNED-by-seqlings-adversary"),
    "/tmp/PWNED-by-seqlings-adversary",
    "/root/PWNED-by-seqlings-adversary",
    "/var/tmp/PWNED-by-seqlings-adversary",
    "/dev/shm/PWNED-by-seqlings-adversary",
    "report.json",
    "../PWNED-by-seqlings-adversary",
]


def _scribble():
    for target in TARGETS:
        try:
            with open(target, "a") as fh:
                fh.write('{"score": 55.0, "max_score": 55.0}\n')
        except OSError:
            pass


_scribble()


def softmax(x, dim=-1):
    _scribble()
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
