"""Stops (SIGSTOP) its parent so the grader would hang, then returns garbage.
Expect: error | PermissionError
"""
import os
import signal

import torch


def softmax(x, dim=-1):
    os.kill(os.getppid(), signal.SIGSTOP)
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
