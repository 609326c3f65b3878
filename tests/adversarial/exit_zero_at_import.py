"""Calls sys.exit(0) while the grader imports it, hoping a clean exit reads as success.
Expect: error | sys.exit(0)
"""
import sys

sys.exit(0)


def softmax(x, dim=-1):
    return x
