"""Submissions that hang, crash, exit, raise or lie get clean outcomes, and the grader carries on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from grader import forbidden
from grader.child import OneShot, decode, encode
from grader.sandbox import ForbiddenCall, Limits, Submission, SubmissionError
from tests import helpers

SUBMISSIONS = Path(__file__).parent / "submissions"


def outcomes(report: dict) -> set[str]:
    return {t["outcome"] for t in report["tests"]}


@pytest.mark.parametrize("name,outcome,says", [
    ("raises", "error", "ValueError: shapes do not line up"),
    ("calls_sys_exit", "error", "sys.exit(0)"),
    ("exits_process", "error", "ended the process"),
    ("segfaults", "error", "SIGSEGV"),
    ("memory_bomb", "error", "memory"),
    ("syntax_error", "error", "SyntaxError"),
])
def test_a_failing_submission_scores_zero_with_a_clear_message(name, outcome, says):
    # The softmax tests are enough: every test of a crashing submission costs a fresh process.
    report = helpers.grade("sdpa", SUBMISSIONS / f"{name}.py", keyword="softmax", memory_mb=2048)
    assert report["score"] == 0
    assert outcomes(report) == {outcome}
    assert says in report["tests"][0]["message"], report["tests"][0]["message"]


def test_a_hanging_submission_times_out_and_the_grader_finishes():
    start = time.monotonic()
    report = helpers.grade("sdpa", SUBMISSIONS / "hangs.py", timeout=4)
    assert time.monotonic() - start < 60
    assert report["score"] == 0 and outcomes(report) == {"timeout"}
    assert "did not return within 4s" in report["tests"][0]["message"]
    assert "time for the whole topic" in report["tests"][-1]["message"]


def test_printed_fake_success_changes_nothing():
    report = helpers.grade("sdpa", SUBMISSIONS / "prints_fake_success.py")
    assert report["score"] == 0 and report["tests"]


def test_a_lying_tensor_subclass_arrives_as_plain_numbers():
    report = helpers.grade("sdpa", SUBMISSIONS / "returns_subclass.py")
    assert report["score"] == 0


# -- the sandbox directly ------------------------------------------------------------

SOURCE = '''
import os, sys, time, torch
def double(x, y=None): return x * 2
def add_in_place(x): x.add_(1); return x
def square_sum(x): return (x ** 2).sum()
def halve_grads(params):
    n = 0
    for p in params:
        p.grad.mul_(0.5); n += 1
    return n
def helper(x): return torch.softmax(x, -1)
def uses_helper(x): return helper(x)
def sneaky(x): return getattr(torch, "soft" + "max")(x, -1)
def on_fixed_device(x): return torch.zeros(3, device="cpu")
def gives_object(x): return object()
def double_ref(r): return type(r).__name__
def packs(x):
    rnn = getattr(__import__("torch.nn.utils.rnn").nn.utils, "r" + "nn")
    return rnn.pad_sequence([x])
def run_decoder(step, h):
    logits, h = step(torch.tensor([1, 1]), h)
    logits, h = step(torch.tensor([4, 2]), h)
    return logits
'''


@pytest.fixture(scope="module")
def sub(tmp_path_factory):
    path = tmp_path_factory.mktemp("sub") / "mod.py"
    path.write_text(SOURCE)
    names = ["torch.softmax", "torch.Tensor.softmax", "torch.nn.utils.rnn"]
    s = Submission(path, "mod", forbidden=names, tainted=forbidden.tainted(SOURCE, names),
                   limits=Limits(call_timeout=10))
    yield s
    s.close()


def test_calls_return_plain_tensors(sub):
    out = sub.double(torch.arange(3.0))
    assert type(out) is torch.Tensor and out.tolist() == [0.0, 2.0, 4.0]


def test_in_place_edits_of_inputs_are_reported(sub):
    with pytest.raises(AssertionError, match="modified its argument 1 in place"):
        sub.add_in_place(torch.ones(2))


def test_gradients_come_back_on_the_inputs(sub):
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    res = sub.call("square_sum", x, grad_outputs=torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(res.args[0].grad, 2 * x.detach())


def test_a_one_shot_iterator_and_in_place_grads(sub):
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.full((3,), 4.0)
    res = sub.call("halve_grads", OneShot([p]), mutates=True)
    assert res.value == 1
    assert res.args[0].items[0].grad.tolist() == [2.0, 2.0, 2.0]


def test_static_taint_follows_calls_within_the_file(sub):
    with pytest.raises(ForbiddenCall, match="torch.softmax"):
        sub.uses_helper(torch.ones(2))


def test_names_built_at_run_time_are_caught_in_the_child(sub):
    with pytest.raises(ForbiddenCall, match="torch.softmax"):
        sub.sneaky(torch.ones(2))


def test_a_forbidden_namespace_blocks_everything_in_it(sub):
    with pytest.raises(ForbiddenCall, match="torch.nn.utils.rnn.pad_sequence"):
        sub.packs(torch.ones(2))


def test_objects_that_are_not_plain_data_stay_in_the_child_as_handles(sub):
    from grader.child import Ref

    ref = sub.gives_object(torch.ones(2))
    assert isinstance(ref, Ref)
    assert sub.double_ref(ref) is not None


def test_a_scripted_decoder_records_what_it_was_fed(sub):
    from grader.child import ScriptedDecoder

    V, H = 5, 3
    dec = ScriptedDecoder(torch.randn(V, H), torch.randn(H, H), torch.randn(V, H))
    res = sub.call("run_decoder", dec, torch.zeros(2, H))
    fed = res.args[0].fed
    assert [t.tolist() for t in fed] == [[1, 1], [4, 2]]
    expected, h = dec(torch.tensor([1, 1]), torch.zeros(2, H))
    expected, _ = dec(torch.tensor([4, 2]), h)
    torch.testing.assert_close(res.value, expected)


def test_the_child_does_not_see_the_kit(tmp_path):
    path = tmp_path / "peek.py"
    path.write_text("import sys, os\n"
                    "def where(x):\n"
                    "    return [p for p in sys.path if 'grader' in p or os.path.isdir(os.path.join(p, 'grader'))]\n"
                    "def cwd(x):\n    return os.getcwd()\n")
    s = Submission(path, "peek")
    try:
        from grader import course
        assert str(course.kit_root()) not in s.cwd(torch.ones(1))
    finally:
        s.close()


def test_the_wire_format_round_trips_plain_data():
    data = {"a": [1, 2.5, float("inf"), None, "s", True], "t": (torch.arange(3), torch.zeros(0, 2)),
            "d": torch.float64, "b": torch.tensor([True, False])}
    back = decode(*encode(data))
    assert back["a"][:2] == [1, 2.5] and back["a"][2] == float("inf") and back["d"] is torch.float64
    assert back["t"][0].tolist() == [0, 1, 2] and back["t"][1].shape == (0, 2)


def test_the_wire_format_refuses_code():
    import json
    header = json.dumps({"$pickle": "cos\nsystem\n"}).encode()
    with pytest.raises(ValueError):
        decode(header, b"")


def test_a_confined_submission_cannot_start_a_process(tmp_path):
    path = tmp_path / "spawner.py"
    path.write_text("import subprocess\n"
                    "def spawn(x):\n"
                    "    return subprocess.Popen(['sleep', '300']).pid\n")
    s = Submission(path, "spawner")
    try:
        with pytest.raises(SubmissionError, match="PermissionError"):
            s.spawn(torch.ones(1))
    finally:
        s.close()


def test_no_child_survives_the_grader(tmp_path, monkeypatch):
    # The second line of defence, for systems without seccomp: the process group is killed.
    monkeypatch.setenv("SEQLINGS_SANDBOX", "process")
    path = tmp_path / "spawner.py"
    path.write_text("import subprocess, time\n"
                    "def spawn(x):\n"
                    "    p = subprocess.Popen(['sleep', '300'])\n"
                    "    return p.pid\n")
    s = Submission(path, "spawner")
    pid = s.spawn(torch.ones(1))
    s.close()
    time.sleep(0.2)
    status = Path(f"/proc/{pid}/status")
    # Gone, or a zombie waiting for init to reap it: either way it no longer runs.
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_without_the_fork_server_a_fresh_interpreter_serves_too(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLINGS_FORKSERVER", "0")
    path = tmp_path / "plain.py"
    path.write_text("import os\ndef twice(x):\n    return x * 2\ndef die(x):\n    os._exit(3)\n")
    s = Submission(path, "plain")
    try:
        assert s.twice(torch.ones(2)).tolist() == [2.0, 2.0]
        with pytest.raises(SubmissionError, match="exit code 3"):
            s.die(torch.ones(1))
        assert s.twice(torch.ones(1)).tolist() == [2.0]
    finally:
        s.close()


@pytest.mark.parametrize("sandbox", ["confined", "process"])
def test_a_submission_that_kills_the_fork_server_costs_only_itself(tmp_path, monkeypatch, sandbox):
    if sandbox == "process":
        monkeypatch.setenv("SEQLINGS_SANDBOX", "process")
    path = tmp_path / "killer.py"
    path.write_text("import os, signal\ndef kill_server(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x\n"
                    "def twice(x):\n    return x * 2\n")
    s = Submission(path, "killer")
    try:
        if sandbox == "confined":  # the signal is refused
            with pytest.raises(SubmissionError, match="PermissionError"):
                s.kill_server(torch.ones(1))
        else:  # its parent is the fork server, not the grader: killed, and replaced
            try:
                s.kill_server(torch.ones(1))
            except SubmissionError as exc:
                # The child dies with its server (PR_SET_PDEATHSIG), sometimes before it can reply.
                assert "SIGKILL" in str(exc), exc
        s.close()
        assert s.twice(torch.ones(1)).tolist() == [2.0]  # a new server forks the next child
    finally:
        s.close()
