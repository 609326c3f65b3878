"""Signals every process it can: kill(-1), each pid found in /proc, the fork server's group.

Run only under seccomp and Landlock (the test checks): without them, as root, kill(-1)
would take the whole machine down with it.
Expect: error | PermissionError
"""
import os
import signal

import torch


def softmax(x, dim=-1):
    os.kill(-1, signal.SIGKILL)
    return torch.zeros_like(x)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            os.kill(int(entry), signal.SIGTERM)
    return torch.zeros(1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
    return torch.zeros_like(query)
