"""Tries to start processes that outlive the grader: fork, subprocess, multiprocessing,
os.system, a double-forked daemon.
Expect: error | PermissionError
"""
import multiprocessing
import os
import subprocess
import time


def softmax(x, dim=-1):
    subprocess.Popen(["sleep", "3600"], start_new_session=True)
    return x


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    if os.fork() == 0:
        os.setsid()
        time.sleep(3600)
    return query


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    multiprocessing.Process(target=time.sleep, args=(3600,), daemon=False).start()
    os.system("sleep 3600 &")
    return query
