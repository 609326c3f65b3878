"""Hostile submissions (tests/adversarial/, one file per trick) earn nothing and harm nothing.

For each trick: score 0, an honest outcome with the expected message, the kit's
files unchanged, nothing written outside the child's scratch folder, no process
of the submission left running, and the grader grading the reference in full
right after. A lookup table of the answers for the fixed seeds scores only with
those seeds.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from grader import course, engine, sandbox
from grader.cli_common import draw_seed
from tests import helpers

pytestmark = pytest.mark.xdist_group("adversarial")

ADVERSARIAL = Path(__file__).parent / "adversarial"
MARKER = "PWNED-by-seqlings-adversary"
# Files that must not exist after any trick (the adversaries try to create them).
FORBIDDEN_FILES = [course.kit_root() / MARKER, course.workspace() / ".seqlings" / MARKER,
                   Path(tempfile.gettempdir()) / MARKER, Path("/tmp") / MARKER, Path("/var/tmp") / MARKER,
                   Path.home() / MARKER, Path("/dev/shm") / MARKER, Path("/tmp/PWNED-by-seqlings-pickle")]
KIT_FILES = [course.topic("sdpa").reference, course.topic("sdpa").grader]
# Tricks that could harm the machine if the confinement were not there.
NEEDS_CONFINEMENT = {"signal_everyone", "kill_parent", "stop_parent", "spawns_survivors", "network", "write_files"}
HANGS = {"endless_loop", "sleeps"}


def expectation(path: Path) -> tuple[set[str], str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    line = next(line for line in doc.splitlines() if line.startswith("Expect:"))
    outcomes, _, says = line.removeprefix("Expect:").partition("|")
    return set(outcomes.strip().split("/")), says.strip()


def tricks() -> list[Path]:
    return sorted(ADVERSARIAL.glob("*.py"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sleepers() -> set[int]:
    """Processes running `sleep 3600` (what the spawning tricks try to leave behind)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[:2] == [b"sleep", b"3600"]:
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def confined() -> dict:
    """The layers a child runs under here; tricks that need them are skipped where they are missing."""
    report = helpers.grade("sdpa", "reference", keyword="softmax_keeps_float32")
    assert report["score"] == report["max_score"]
    return dict(sandbox.LAST_CONFINEMENT)


def test_every_trick_states_what_it_expects():
    assert len(tricks()) >= 20
    for path in tricks():
        outcomes, _ = expectation(path)
        assert outcomes <= {"failed", "error", "timeout", "forbidden"}, path.name


@pytest.mark.parametrize("path", tricks(), ids=lambda p: p.stem)
def test_a_trick_earns_nothing_and_harms_nothing(path, confined):
    if path.stem in NEEDS_CONFINEMENT and not (confined.get("seccomp") and confined.get("landlock", 0) >= 6):
        pytest.skip("needs seccomp and Landlock ABI 6 (signal scoping), which this system lacks")
    outcomes, says = expectation(path)
    kit_before = {p: digest(p) for p in KIT_FILES}
    sleepers_before = sleepers()
    report = helpers.grade("sdpa", path, keyword="softmax", memory_mb=2048,
                           timeout=6 if path.stem in HANGS else 120)
    assert report["tests"], "no test ran"
    assert report["score"] == 0, helpers.summary(report)
    got = {t["outcome"] for t in report["tests"]}
    assert got <= outcomes, helpers.summary(report)
    assert any(says in t["message"] for t in report["tests"]), helpers.summary(report)
    # Harmless: the kit unchanged, no file planted, nothing left running.
    assert {p: digest(p) for p in KIT_FILES} == kit_before
    assert [p for p in FORBIDDEN_FILES if p.exists()] == []
    time.sleep(0.2)
    assert sleepers() - sleepers_before == set()
    # And the grader still grades: the reference gets full marks right after.
    again = helpers.grade("sdpa", "reference", keyword="softmax")
    assert again["score"] == again["max_score"]


def _record_softmax_calls(monkeypatch, seed: int) -> list[tuple[torch.Tensor, int, torch.Tensor]]:
    """Grade the reference with ``seed`` and keep every softmax call's input and output (grader side)."""
    calls = []
    original = sandbox.Submission.call

    def recording(self, fn, *args, **kwargs):
        result = original(self, fn, *args, **kwargs)
        if fn == "softmax" and not kwargs.get("grad_outputs"):
            dim = args[1] if len(args) > 1 else kwargs.get("dim", -1)
            calls.append((args[0].detach().clone(), dim, result.value.detach().clone()))
        return result

    monkeypatch.setattr(sandbox.Submission, "call", recording)
    helpers.grade("sdpa", "reference", keyword="softmax", seed=seed)
    monkeypatch.setattr(sandbox.Submission, "call", original)
    return calls


LOOKUP = '''"""Answers looked up by the exact bytes of the input (recorded from the grader's fixed seeds)."""
import base64
import hashlib

import torch
from safetensors.torch import load

TABLE = load(base64.b64decode({blob!r}))


def _key(x, dim):
    data = x.detach().contiguous().view(torch.uint8).numpy().tobytes()
    return hashlib.sha256(data + str(x.dtype).encode() + str(tuple(x.shape)).encode() + str(dim).encode()).hexdigest()


def softmax(x, dim=-1):
    key = _key(x, dim)
    return TABLE[key].clone() if key in TABLE else torch.zeros_like(x)


attention_weights = scaled_dot_product_attention = softmax
'''


def test_a_lookup_table_of_the_fixed_seeds_scores_nothing_with_a_drawn_seed(monkeypatch, tmp_path):
    from safetensors.torch import save

    def key(x: torch.Tensor, dim: int) -> str:
        data = x.contiguous().view(torch.uint8).numpy().tobytes()
        return hashlib.sha256(data + str(x.dtype).encode() + str(tuple(x.shape)).encode()
                              + str(dim).encode()).hexdigest()

    calls = _record_softmax_calls(monkeypatch, seed=0)
    assert len(calls) >= 5
    table = {key(x, dim): out.contiguous() for x, dim, out in calls}
    path = tmp_path / "lookup.py"
    path.write_text(LOOKUP.format(blob=base64.b64encode(save(table)).decode()))

    fixed = helpers.grade("sdpa", path, keyword="softmax", seed=0)
    value_tests = [t for t in fixed["tests"] if "gradient" not in t["id"]]
    # With the seeds it was recorded from, the table answers every value test...
    assert all(t["outcome"] == "passed" for t in value_tests if "all_minus_inf" not in t["id"]), helpers.summary(fixed)
    # ...with a seed drawn for the run (instructor grading), it answers none that has random inputs.
    seed = draw_seed()
    drawn = helpers.grade("sdpa", path, keyword="softmax", seed=seed)
    assert drawn["seed"] == seed
    random_inputs = [t for t in drawn["tests"] if "all_minus_inf" not in t["id"]]
    assert random_inputs and all(t["outcome"] != "passed" for t in random_inputs), helpers.summary(drawn)
    assert drawn["score"] < fixed["score"]


def test_the_report_names_the_seed_and_the_confinement(confined):
    report = helpers.grade("sdpa", "reference", keyword="softmax_keeps", seed=1234)
    assert report["seed"] == 1234
    assert report["isolation"][0] == "process"
    if confined.get("landlock"):
        assert f"landlock {confined['landlock']}" in report["isolation"]
    if confined.get("seccomp"):
        assert "seccomp" in report["isolation"]


def test_confinement_is_on_where_linux_offers_it(confined):
    if not os.path.exists("/sys/kernel/security/landlock") and not confined:
        pytest.skip("no Landlock on this kernel")
    assert confined.get("seccomp") is True


COPY_A_CLASSMATE = '''"""Runs a classmate's solution, read from the class folder at grading time."""
import os

_here = os.path.dirname(os.path.abspath(__file__))
_ns = {}
exec(open(os.path.join(_here, "..", "alice", "sdpa.py")).read(), _ns)
softmax = _ns["softmax"]
attention_weights = _ns["attention_weights"]
scaled_dot_product_attention = _ns["scaled_dot_product_attention"]
'''


def test_in_a_batch_a_submission_cannot_read_a_classmates_folder(monkeypatch):
    import shutil

    from grader import batch

    monkeypatch.setenv("SEQLINGS_PRIVATE", "")  # undone after the test, whatever grade_job sets
    # Outside the temp folder, which is private anyway: only the batch's own list can protect it.
    try:
        base = Path(tempfile.mkdtemp(prefix="seqlings-class-", dir="/var/tmp"))
    except OSError:
        pytest.skip("/var/tmp is not writable here")
    try:
        for student, source in (("alice", course.topic("sdpa").reference.read_text()),
                                ("mallory", COPY_A_CLASSMATE)):
            (base / "class" / student).mkdir(parents=True)
            (base / "class" / student / "sdpa.py").write_text(source)
        job = batch.Job("mallory", "sdpa", base / "class" / "mallory" / "sdpa.py")
        open_class = batch.grade_job(job, job.path.read_text(), batch.Settings(), str(base / "scratch"))
        if not sandbox.LAST_CONFINEMENT.get("landlock"):
            pytest.skip("no Landlock here: file access is not confined")
        assert open_class["score"] == open_class["max_score"]  # the copy works when nothing protects alice
        settings = batch.Settings(private=(str(base / "class"),))
        row = batch.grade_job(job, job.path.read_text(), settings, str(base / "scratch"))
        assert row["score"] == 0
        assert "PermissionError" in row["tests"][0]["message"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_as_root_the_child_drops_to_nobody_and_still_grades(monkeypatch):
    if os.getuid() != 0 or not sys.platform.startswith("linux") or os.environ.get("SEQLINGS_SANDBOX") == "process":
        pytest.skip("the drop to nobody happens only when the grader runs as root on Linux")
    # Here the interpreter may live in a folder nobody can read (e.g. /root/.pyenv), where the
    # policy keeps root; pretend it is readable, as in a system-wide install, to take that path.
    monkeypatch.setattr(sandbox, "_world_readable", lambda paths: True)
    report = helpers.grade("sdpa", "reference", keyword="softmax or gradients")
    assert report["score"] == report["max_score"], helpers.summary(report)
    assert f"uid {sandbox.NOBODY}" in report["isolation"]
    trick = helpers.grade("sdpa", ADVERSARIAL / "kill_parent.py", keyword="softmax_keeps")
    assert trick["score"] == 0 and "PermissionError" in trick["tests"][0]["message"]
