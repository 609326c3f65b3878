"""Tries to send the inputs out over the network (to look the answers up elsewhere).
Expect: error | PermissionError
"""
import socket

import torch


def softmax(x, dim=-1):
    with socket.create_connection(("127.0.0.1", 80), timeout=1) as s:
        s.sendall(x.numpy().tobytes())
    return torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
