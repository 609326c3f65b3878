"""The grading plugin: markers, options, the ``impl`` fixture and outcome bookkeeping.

Load it with ``-p grader.plugin``. A grader test asks for ``impl`` (the
submission, running in its own process) and marks its worth with
``@pytest.mark.points(n)``; ``@pytest.mark.public`` ships it to students,
every other test is hidden. Each test's outcome and message land in its
report's ``user_properties`` for the engine to read.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from grader import course, forbidden
from grader.sandbox import ForbiddenCall, Limits, Submission, SubmissionError, SubmissionTimeout

MARKERS = {
    "points(n)": "the test is worth n points",
    "public": "the test ships to students in the release bundle (tests are hidden by default)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seqlings", "seqlings grading")
    group.addoption("--topic", dest="seqlings_topic", help="topic being graded (default: from the file name)")
    group.addoption("--impl", dest="seqlings_impl", default=None,
                    help="file to grade; 'reference' for the reference solution (default: exercises/TOPIC.py)")
    group.addoption("--grade-device", dest="seqlings_device", default="cpu",
                    help="device the submission runs on: cpu or cuda")
    group.addoption("--grade-timeout", dest="seqlings_timeout", type=float, default=120.0,
                    help="seconds for the whole topic")
    group.addoption("--grade-memory", dest="seqlings_memory", type=int, default=None,
                    help="address-space limit of the submission's process in MiB (CPU only)")
    group.addoption("--seed", dest="seqlings_seed", type=int, default=0,
                    help="mixed into every test's seed (0: the fixed seeds a learner sees)")


def pytest_configure(config: pytest.Config) -> None:
    for marker, text in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {text}")


def settings(config: pytest.Config, path: Path) -> tuple[course.Topic, Path, str, float]:
    """Resolve options in one place: topic, file to grade, device, topic timeout."""
    name = config.getoption("seqlings_topic") or path.stem.removeprefix("test_")
    topic = course.topic(name)
    impl = config.getoption("seqlings_impl")
    file = topic.reference if impl == "reference" else Path(impl) if impl else topic.exercise
    return topic, file.resolve(), config.getoption("seqlings_device"), config.getoption("seqlings_timeout")


@pytest.fixture(scope="module")
def impl(request: pytest.FixtureRequest):
    """The submission under test, running in a child process."""
    topic, file, device, timeout = settings(request.config, Path(request.node.path))
    try:
        source = file.read_text()
    except OSError as exc:
        raise SubmissionError(f"cannot read {file}: {exc.strerror}") from None
    limits = Limits(topic_timeout=timeout)
    if request.config.getoption("seqlings_memory"):
        limits.memory_bytes = request.config.getoption("seqlings_memory") << 20
    sub = Submission(file, f"seqlings_{topic.name}", forbidden=list(topic.forbidden), kernels=list(topic.kernels),
                     tainted=forbidden.tainted(source, [*topic.forbidden, *forbidden.INTERNALS]),
                     device=device, limits=limits)
    yield sub
    sub.close()


def test_id(item: pytest.Item) -> str:
    topic = item.config.getoption("seqlings_topic") or Path(item.path).stem.removeprefix("test_")
    return f"{topic}::{item.name.removeprefix('test_')}"


@pytest.fixture(autouse=True)
def _seed(request: pytest.FixtureRequest) -> None:
    """Each test seeds torch from its own id, so a failure looks the same on every run."""
    import torch

    torch.manual_seed(zlib.crc32(test_id(request.node).encode()) ^ request.config.getoption("seqlings_seed"))


def judge(excinfo: pytest.ExceptionInfo | None) -> tuple[str, str]:
    """Map how a test ended to (outcome, message)."""
    if excinfo is None:
        return "passed", ""
    exc = excinfo.value
    if isinstance(exc, SubmissionTimeout):
        return "timeout", str(exc)
    if isinstance(exc, ForbiddenCall):
        return "forbidden", str(exc)
    if isinstance(exc, SubmissionError):
        return "error", str(exc)
    if isinstance(exc, AssertionError):
        text = str(exc)
        # Keep the message a test wrote; drop pytest's re-evaluation of the expression.
        return "failed", text.split("\nassert ")[0].strip() or "assertion failed"
    return "error", f"the grader could not use your output: {type(exc).__name__}: {exc}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    if report.skipped:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        marker = item.get_closest_marker("points")
        points = float(marker.args[0]) if marker else 1.0
        outcome, message = judge(call.excinfo)
        report.user_properties.append(("seqlings", {
            "id": test_id(item), "max_points": points,
            "points": points if outcome == "passed" else 0.0,
            "outcome": outcome, "message": message,
            "public": item.get_closest_marker("public") is not None,
        }))
