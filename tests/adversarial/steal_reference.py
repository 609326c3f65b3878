"""Looks for the reference solution or the hidden grader: imports them, searches the file
system for reference/sdpa.py, and runs whatever it finds. All of it is out of reach.
Expect: error | could not find the reference
"""
import importlib
import os
import sys


def _find():
    for name in ("reference.sdpa", "grader.checks.test_sdpa", "grader.course"):
        try:
            module = importlib.import_module(name)
            if hasattr(module, "softmax"):
                return module
            if hasattr(module, "kit_root"):
                sys.path.insert(0, str(module.kit_root()))
                return importlib.import_module("reference.sdpa")
        except Exception:
            pass
    here = os.path.abspath(__file__)
    candidates = [os.path.join(os.path.dirname(here), *[".."] * up, "reference", "sdpa.py") for up in range(4)]
    for root, dirs, files in os.walk("/"):
        if root.count(os.sep) > 3:
            dirs[:] = []
        if root.endswith("reference") and "sdpa.py" in files:
            candidates.append(os.path.join(root, "sdpa.py"))
    for path in candidates:
        try:
            source = open(path).read()
        except OSError:
            continue
        namespace = {}
        exec(compile(source, path, "exec"), namespace)
        return type("Stolen", (), namespace)
    raise RuntimeError("could not find the reference")


def softmax(x, dim=-1):
    return vars(_find())["softmax"](x, dim)


def attention_weights(*args, **kwargs):
    return _find().attention_weights(*args, **kwargs)


def scaled_dot_product_attention(*args, **kwargs):
    return _find().scaled_dot_product_attention(*args, **kwargs)
