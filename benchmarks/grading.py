"""The `grader` group: `seqlings check all --impl reference` against the same tests without the sandbox.

    python -m benchmarks --only grader [--quick]

Both sides are fresh processes timed from the outside, in turns:
- `seqlings check all --impl reference --device cpu --json FILE`, as a user
  runs it: one pytest session per topic, each submission in its forked,
  limited child process, every value crossing the pipe;
- one plain `python -m pytest` over the same eleven grader files with the
  engine's arguments (grader/engine.py), where benchmarks/inprocess_plugin.py
  replaces the child with an in-process `InProcess` submission.
The baseline only counts if it passes as many tests as the real check does
(every one, with full marks). Ratio = median check time / median in-process
time: the price of the isolation.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, Figure, median, run_timed, seqlings_exe, subprocess_env

TARGET = 1.5


def check_all(report: Path) -> list[str]:
    return [seqlings_exe(), "check", "all", "--impl", "reference", "--device", "cpu",
            "--json", str(report)]


def in_process() -> list[str]:
    from grader import course

    files = [str(t.grader) for t in course.topics()]
    return [sys.executable, "-m", "pytest", *files, "-p", "grader.plugin", "-p", "benchmarks.inprocess_plugin",
            "-p", "no:cacheprovider", "-p", "no:randomly", "--import-mode=importlib",
            "--rootdir", str(ROOT / "grader" / "checks"), "-c", "/dev/null",
            "--impl", "reference", "--grade-device", "cpu", "-q"]


def time_check(report: Path, env: dict) -> tuple[float, int, int]:
    """Seconds of `seqlings check all`, and its tests (passed, total); it must give full marks."""
    took, done = run_timed(check_all(report), env)
    data = json.loads(report.read_text()) if report.exists() else {}
    if done.returncode != 0 or data.get("score") != data.get("max_score"):
        raise RuntimeError(f"seqlings check all --impl reference did not give full marks (exit {done.returncode}):\n"
                           f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
    tests = [t for topic in data["topics"] for t in topic["tests"]]
    return took, sum(t["outcome"] == "passed" for t in tests), len(tests)


def time_in_process(env: dict) -> tuple[float, int]:
    """Seconds of the in-process pytest run, and how many tests passed."""
    took, done = run_timed(in_process(), env)
    found = re.search(r"(\d+) passed", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"the in-process baseline failed (exit {done.returncode}):\n"
                           f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return took, int(found.group(1))


def run(quick: bool) -> tuple[list[Figure], dict]:
    repeats = 1 if quick else 3
    times: dict[str, list[float]] = {"check": [], "inprocess": []}
    with tempfile.TemporaryDirectory(prefix="seqlings-bench-grader-") as tmp:
        report = Path(tmp) / "report.json"
        env = subprocess_env(Path(tmp))
        time_in_process(env)  # warm-up: file and bytecode caches
        for r in range(repeats):
            for side in ("check", "inprocess") if r % 2 == 0 else ("inprocess", "check"):
                if side == "check":
                    took, passed, total = time_check(report, env)
                else:
                    took, passed_in_process = time_in_process(env)
                times[side].append(took)
    if passed_in_process != passed:
        raise RuntimeError(f"the baseline is not the same grading: check passed {passed}/{total} tests, "
                           f"the in-process run {passed_in_process}")
    check_s, inproc_s = median(times["check"]), median(times["inprocess"])
    figures = [
        Figure("grader", "check all --impl reference vs in-process pytest", check_s / inproc_s, TARGET,
               detail=f"{check_s:.1f} s vs {inproc_s:.1f} s; {passed}/{total} tests passed on both sides, "
                      "full marks", data={"check_s": times["check"], "inprocess_s": times["inprocess"]}),
        Figure("grader", "check all --impl reference, absolute", check_s, None, unit="s",
               detail=f"{total} tests in 11 topics, {os.cpu_count()} cores"),
    ]
    info = {"method": f"median of {repeats} runs each, in turns; both include interpreter start and imports",
            "check_command": " ".join(check_all(Path("FILE"))), "inprocess_command": " ".join(in_process()),
            "tests": total, "passed": passed}
    return figures, info
