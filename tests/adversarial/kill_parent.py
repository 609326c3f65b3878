"""Kills its parent and every ancestor it can find, then returns garbage.
Expect: error | PermissionError
"""
import os
import signal

import torch


def softmax(x, dim=-1):
    os.kill(os.getppid(), signal.SIGKILL)
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
