"""What every benchmark group shares: interleaved timing, figures with targets, result files.

A figure is one number against its target: a ratio to a baseline measured in
the same run (median of several repeats), or a fitted exponent. Timed
functions are measured in turns (A, B, B, A, ...) so that a load change on the
machine hits both sides of a ratio alike.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@dataclass
class Figure:
    """One reported number; ``met`` is None where there is no target (reported for information)."""

    group: str
    name: str
    value: float
    target: float | None
    unit: str = "x"  # "x" for a ratio, "exp" for a fitted exponent, "s" for seconds
    detail: str = ""
    data: dict = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value <= self.target

    def to_json(self) -> dict:
        return {**asdict(self), "met": self.met}


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def _block(fn: Callable[[], object], n: int, sync: Callable[[], None]) -> float:
    """Seconds for n calls of fn, with the garbage collector held off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return time.perf_counter() - start
    finally:
        gc.enable()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, block_s: float,
                sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each function, one sample per repeat, measured in alternating order.

    Each function is warmed up (lazy initialisation, allocator caches), then
    called n times per sample, n chosen so that one sample takes about block_s.
    """
    calls = {}
    for name, fn in fns.items():
        fn()
        took = _block(fn, 1, sync)
        calls[name] = max(1, min(10_000, round(block_s / max(took, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(repeats):
        for name in order if r % 2 == 0 else reversed(order):
            samples[name].append(_block(fns[name], calls[name], sync) / calls[name])
    return samples


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of num / den, each pair measured back to back."""
    return median([a / b for a, b in zip(num, den)])


def run_timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    """Wall-clock seconds of one command, and its completed process (output captured)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def seqlings_exe() -> str:
    """The venv's `seqlings` entry point, the one a user types."""
    exe = shutil.which("seqlings", path=str(Path(sys.executable).parent)) or shutil.which("seqlings")
    if exe is None:
        raise RuntimeError("no `seqlings` entry point next to this Python: pip install -e . first")
    return exe


def subprocess_env(scratch: Path) -> dict[str, str]:
    """The environment for timed commands: progress in a scratch database, bytecode cached in scratch.

    This machine sets PYTHONDONTWRITEBYTECODE, so every process would compile
    every module it imports that has no fresh .pyc (any file edited since); a
    user's installed kit has its bytecode. Caching it under scratch
    (PYTHONPYCACHEPREFIX) after a warm-up run leaves the working tree alone.
    """
    env = {**os.environ, "SEQLINGS_DB": str(scratch / "progress.db"), "PYTHONPYCACHEPREFIX": str(scratch / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def environment() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
            "executable": sys.executable}


def write_group(group: str, figures: list[Figure], info: dict) -> Path:
    """benchmarks/results/GROUP.json: the figures plus how they were measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{group}.json"
    path.write_text(json.dumps({"group": group, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                                "environment": environment(), **info,
                                "figures": [f.to_json() for f in figures]}, indent=2) + "\n")
    return path


def shown(value: float, unit: str) -> str:
    return {"x": f"{value:.2f}x", "exp": f"{value:.2f}", "s": f"{value:.2f} s"}.get(unit, f"{value:.3g} {unit}")


def verdict(met: bool | None) -> str:
    return "info" if met is None else "met" if met else "MISSED"
