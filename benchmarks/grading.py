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


def passed_in_report(report: Path) -> tuple[int, int, bool]:
    data = json.loads(report.read_text())
    tests = [t for r in data["topics"] for t in r["tests"]]
    return sum(t["outcome"] == "passed" for t in tests), len(tests), data["score"] == data["max_score"]


def run(quick: bool) -> tuple[list[Figure], dict]:
    repeats = 1 if quick else 3
    times: dict[str, list[float]] = {"check": [], "inprocess": []}
    with tempfile.TemporaryDirectory(prefix="seqlings-bench-grader-") as tmp:
        report = Path(tmp) / "report.json"
        env = subprocess_env(Path(tmp))
        run_timed(in_process(), env)  # warm-up: file and bytecode caches
        for r in range(repeats):
            for side in ("check", "inprocess") if r % 2 == 0 else ("inprocess", "check"):
                took, done = run_timed(check_all(report) if side == "check" else in_process(), env)
                if side == "check":
                    if done.returncode not in (0, 1):
                        raise RuntimeError(f"seqlings check all failed ({done.returncode}):\n{done.stderr[-2000:]}")
                    passed, total, full = passed_in_report(report)
                else:
                    found = re.search(r"(\d+) passed", done.stdout)
                    inproc_passed = int(found.group(1)) if found else 0
                    inproc_tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
                times[side].append(took)
    if inproc_passed != passed or not full:
        raise RuntimeError(f"the baseline is not the same grading: check passed {passed}/{total} "
                           f"(full marks: {full}), in-process passed {inproc_passed} ({inproc_tail})")
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
