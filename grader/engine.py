"""Grade one topic: run its grader file with pytest and the grading plugin, collect a report.

The report follows the check report schema of the CLI spec: topic, impl,
device, score, max_score, duration_s and one entry per test.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from grader import course


# pytest keeps global state: one grading run at a time per process (threads queue up here;
# run several processes to grade in parallel).
_LOCK = threading.Lock()


# pytest plugins a grading run has no use for. unraisableexception alone costs ~0.5 s per
# run (it forces full garbage collections at the end), a third of a warm topic's time.
LEAN = [arg for name in ("unraisableexception", "threadexception", "faulthandler", "junitxml", "doctest",
                         "pastebin", "nose", "logging", "legacypath", "setuponly", "setupplan", "stepwise",
                         "debugging", "monkeypatch", "tmpdir", "capture")
        for arg in ("-p", f"no:{name}")] + ["--disable-plugin-autoload"]  # no third-party plugins (xdist, anyio)


class GraderError(RuntimeError):
    """The grader itself could not run (a broken grader file, not the submission)."""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device here; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


def impl_path(topic: course.Topic, impl: str | Path | None) -> Path:
    if impl is None:
        return topic.exercise
    if str(impl) == "reference":
        return topic.reference
    return Path(impl).resolve()


class _Recorder:
    def __init__(self, on_test: Callable[[dict], None] | None):
        self.tests: list[dict] = []
        self.problems: list[str] = []
        self.on_test = on_test

    def pytest_runtest_logreport(self, report) -> None:
        for key, value in report.user_properties:
            if key == "seqlings":
                self.tests.append(value)
                if self.on_test:
                    self.on_test(value)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.problems.append(str(report.longrepr))


def grade(topic_name: str, impl: str | Path | None = None, *, device: str = "auto",
          timeout: float = 120.0, seed: int = 0, only_public: bool = False,
          keyword: str | None = None, memory_mb: int | None = None,
          on_test: Callable[[dict], None] | None = None) -> dict:
    """Run the hidden grader of ``topic_name`` against ``impl`` and return the report."""
    import pytest

    topic = course.topic(topic_name)
    path = impl_path(topic, impl)
    if not path.is_file():
        raise FileNotFoundError(f"no file to grade at {path}")
    device = resolve_device(device)
    recorder = _Recorder(on_test)
    args = [str(topic.grader), "-p", "grader.plugin", "-p", "no:cacheprovider", "-p", "no:terminal",
            "-p", "no:warnings", "-p", "no:randomly", *LEAN, "--import-mode=importlib",
            "--rootdir", str(topic.grader.parent), "-c", "/dev/null",
            "--topic", topic.name, "--impl", str(path), "--grade-device", device,
            "--grade-timeout", str(timeout), "--seed", str(seed)]
    if only_public:
        args += ["-m", "public"]
    if keyword:
        args += ["-k", keyword]
    if memory_mb:
        args += ["--grade-memory", str(memory_mb)]
    start = time.monotonic()
    with _LOCK:
        from grader import sandbox

        sandbox.LAST_CONFINEMENT = {}
        code = pytest.main(args, plugins=[recorder])
    if recorder.problems or (code not in (0, 1) and not recorder.tests):
        raise GraderError(f"the grader for {topic.name} did not run (pytest exit {int(code)}): "
                          + "; ".join(recorder.problems)[:2000])
    score = sum(t["points"] for t in recorder.tests)
    max_score = sum(t["max_points"] for t in recorder.tests)
    return {
        "topic": topic.name,
        "impl": display_path(path),
        "device": device,
        "score": score,
        "max_score": max_score,
        "duration_s": round(time.monotonic() - start, 3),
        "seed": seed,
        "isolation": isolation(),
        "tests": [{k: t[k] for k in ("id", "max_points", "points", "outcome", "message")}
                  for t in recorder.tests],
    }


def isolation() -> list[str]:
    """The confinement layers the submission's process ran under, for the report."""
    from grader import sandbox

    layers = ["process"]
    got = sandbox.LAST_CONFINEMENT
    if got.get("uid") is not None:
        layers.append(f"uid {got['uid']}")
    if got.get("landlock"):
        layers.append(f"landlock {got['landlock']}")
    if got.get("seccomp"):
        layers.append("seccomp")
    return layers


def display_path(path: Path) -> str:
    for base in (course.workspace(), course.kit_root()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)
