"""Starts threads until something gives (each waits forever, holding its stack).
Expect: error | can't start new thread
"""
import threading
import time


def softmax(x, dim=-1):
    while True:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


attention_weights = scaled_dot_product_attention = softmax
