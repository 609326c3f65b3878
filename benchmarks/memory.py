"""The `memory` group: peak memory of each reference against its built-in, at the benchmark sizes.

    python -m benchmarks --only memory [--quick]
    python -m benchmarks.memory CASE reference|builtin forward|forward+backward   # one probe

Method: every measurement runs in a fresh Python process (the probe below). It
builds the problem of the `references` group, runs the same call once at a tiny
size (so lazy initialisation is not counted), then resets the kernel's
high-water mark of its resident set (writing 5 to /proc/self/clear_refs),
reads the resident set size, makes the one call (forward under no_grad, or
forward + backward), and reads the high-water mark again (VmHWM). Peak =
high-water mark minus the resident size before the call: the most memory the
call held at once, inputs and weights excluded. glibc's malloc runs with a
fixed mmap threshold of 64 KiB (MALLOC_MMAP_THRESHOLD_), so every tensor of
64 KiB or more is mapped on allocation and unmapped on free; otherwise freed
heap memory would be reused unseen. tracemalloc cannot see torch's
allocations, hence this method (Linux only).
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import ROOT, Figure, median

PROBE_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
MODES = ("forward", "forward+backward")
TARGET = 2.0


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def probe(name: str, side: str, mode: str) -> dict:
    """Peak memory of one call, measured in this process (run it in a fresh one)."""
    import torch

    from benchmarks.refs import CASES, forward, training_step

    case = CASES[name]

    def call(n: int):
        problem = case.make(n, False, "cpu")
        fn = problem.ref if side == "reference" else problem.builtin
        return forward(fn) if mode == "forward" else training_step(fn, problem.leaves)

    torch.manual_seed(0)
    call(min(case.scale))()  # lazy initialisation at a small size, before the measurement
    run = call(case.n)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    before = _status_kib("VmRSS")
    run()
    return {"peak_kib": _status_kib("VmHWM") - before, "rss_before_kib": before}


def measure(name: str, side: str, mode: str) -> int:
    import torch

    env = {**os.environ, **PROBE_ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the parent's threads
    done = subprocess.run([sys.executable, "-m", "benchmarks.memory", name, side, mode], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {name} {side} {mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"]


def run(quick: bool) -> tuple[list[Figure], dict]:
    from benchmarks.refs import CASES

    repeats = 1 if quick else 3
    jobs = [(case.name, side, mode) for case in CASES.values() for mode in MODES
            for side in ("reference", "builtin") for _ in range(repeats)]
    # Peaks are per process, so two probes at a time do not disturb each other.
    with ThreadPoolExecutor(max_workers=2) as pool:
        peaks_kib = list(pool.map(lambda job: measure(*job), jobs))
    peaks: dict[tuple, list[int]] = {}
    for job, kib in zip(jobs, peaks_kib):
        peaks.setdefault(job, []).append(kib)
    figures = []
    for case in CASES.values():
        for mode in MODES:
            ref, builtin = (median(peaks[case.name, side, mode]) for side in ("reference", "builtin"))
            figures.append(Figure(
                "memory", f"{case.name} {mode}", ref / max(builtin, 1), None if case.target is None else TARGET,
                detail=f"vs {case.builtin}; peak {ref / 1024:.1f} MiB vs {builtin / 1024:.1f} MiB",
                data={"reference_kib": peaks[case.name, "reference", mode],
                      "builtin_kib": peaks[case.name, "builtin", mode], "mode": mode}))
    info = {"method": __doc__.split("Method: ", 1)[1].strip() + f" Median of {repeats} probes each.",
            "repeats": repeats}
    return figures, info


if __name__ == "__main__":
    print(json.dumps(probe(*sys.argv[1:4])))
