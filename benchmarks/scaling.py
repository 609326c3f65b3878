"""The `scaling` group: how each reference and its built-in grow with the sequence length.

    python -m benchmarks --only scaling [--quick] [--device cuda]

For the recurrences and CTC the size is T (time steps), for attention L
(= S, the query and key length). At each size both are timed forward +
backward (where a hidden quadratic usually hides: the backward of T slices of
one tensor can cost T full-size gradients) with a small batch, reported as
time per unit of size, and the exponent k of time ~ size^k is fitted by least
squares on log-log axes. The expectation: k about 1 in T for recurrences and
CTC, about 2 in L for attention (as the built-in; at small L the linear
projections still dominate, so k < 2 there). The figure is the reference's
exponent against the expected one plus 0.25.
"""

from __future__ import annotations

import math

import torch

from benchmarks.common import Figure, median
from benchmarks.refs import CASES, time_pair

EXPECTED = {"T": 1, "L": 2}  # exponent of the work in the size: recurrences are linear, attention quadratic
SCALED = ["lstm_layer", "gru_layer", "bidirectional_lstm", "ctc_loss", "scaled_dot_product_attention",
          "multi_head_attention"]


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(seconds) against log(size), by least squares."""
    xs, ys = [math.log(n) for n in sizes], [math.log(s) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def run(quick: bool, device: str = "cpu") -> tuple[list[Figure], dict]:
    torch.manual_seed(0)
    repeats, block_s = (3, 0.05) if quick else (5, 0.15)
    figures = []
    for name in SCALED:
        case = CASES[name]
        sizes = list(case.scale[:-1] if quick else case.scale)
        per_size = {"reference": [], "builtin": []}
        shapes = []
        for n in sizes:
            problem = case.make(n, True, device)
            shapes.append(problem.sizes)
            t = time_pair(problem, "forward+backward", repeats, block_s, device)
            for side in per_size:
                per_size[side].append(median(t[side]))
        k_ref, k_builtin = exponent(sizes, per_size["reference"]), exponent(sizes, per_size["builtin"])
        per_unit = {side: [1e6 * s / n for s, n in zip(secs, sizes)] for side, secs in per_size.items()}
        expected = EXPECTED[case.dim]
        figures.append(Figure(
            "scaling", f"{name} exponent in {case.dim}", k_ref, expected + 0.25, unit="exp",
            detail=f"built-in {k_builtin:.2f}, expected {expected}; us per {case.dim} (reference / built-in): "
                   + ", ".join(f"{case.dim}={n}: {r:.0f}/{b:.0f}"
                               for n, r, b in zip(sizes, per_unit["reference"], per_unit["builtin"])),
            data={"dim": case.dim, "sizes": sizes, "shapes": shapes, "reference_s": per_size["reference"],
                  "builtin_s": per_size["builtin"], "reference_us_per_unit": per_unit["reference"],
                  "builtin_us_per_unit": per_unit["builtin"], "builtin_exponent": k_builtin,
                  "expected_exponent": expected}))
    info = {"method": f"{device}, float32, forward+backward, small batch; median over {repeats} repeats per size; "
                      "exponent = least-squares slope of log time against log size; target = expected + 0.25"}
    return figures, info
