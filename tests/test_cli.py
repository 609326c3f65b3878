"""The seqlings command, driven through click's CliRunner in a throwaway workspace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from grader import course
from grader.cli import cli

ROOT = course.kit_root()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A learner's workspace: pristine stubs in exercises/, its own progress database."""
    shutil.copytree(ROOT / "exercises", tmp_path / "exercises")
    monkeypatch.setenv("SEQLINGS_HOME", str(tmp_path))
    monkeypatch.delenv("SEQLINGS_DB", raising=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def commands():
    return cli.list_commands(click.Context(cli))


def command(name: str) -> click.Command:
    return cli.get_command(click.Context(cli), name)


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name):
    result = run(name, "--help")
    assert result.exit_code == 0
    assert command(name).name == name  # a lazily loaded command is the one its name says
    assert command(name).help and "Example:" in result.output
    assert f"seqlings {name}" in (ROOT / "README.md").read_text(), f"document `seqlings {name}` in README.md"


def test_help_and_list_do_not_import_torch(workspace):
    code = ("import sys\nfrom click.testing import CliRunner\nfrom grader.cli import cli\n"
            "for args in (['--help'], ['list'], ['show', 'sdpa'], ['hint', 'sdpa']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_shows_every_topic_not_started(workspace):
    result = run("list")
    assert result.exit_code == 0
    for name in course.names():
        assert name in result.output
    assert "not started" in result.output


def test_unknown_topic_is_a_one_line_usage_error(workspace):
    result = CliRunner().invoke(cli, ["show", "sdpx"])
    assert result.exit_code == 2
    assert "unknown topic 'sdpx'" in result.output and "Did you mean 'sdpa'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_hints_come_one_at_a_time_and_stop_at_the_last(workspace):
    n = len(course.topic("sdpa").hints)
    outputs = [run("hint", "sdpa").output for _ in range(n + 1)]
    assert outputs[0].startswith("Hint 1/") and outputs[1].startswith("Hint 2/")
    assert outputs[-1].startswith(f"Hint {n}/{n}")
    assert CliRunner().invoke(cli, ["hint", "sdpa", "99"]).exit_code == 2


def test_check_reference_gives_full_marks_and_a_json_report(workspace):
    result = run("check", "sdpa", "--impl", "reference", "--json", "-")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["topic"] == "sdpa" and report["score"] == report["max_score"] > 0
    assert set(report) == {"topic", "impl", "device", "score", "max_score", "duration_s", "seed", "isolation", "tests"}
    assert report["seed"] == 0 and report["isolation"][0] == "process"
    assert {t["outcome"] for t in report["tests"]} == {"passed"}


def test_check_of_the_stub_fails_and_records_progress(workspace):
    result = run("check", "sdpa")
    assert result.exit_code == 1
    assert "not implemented yet" in result.output and "seqlings hint sdpa" in result.output
    assert "failing (0/" in run("list").output


def test_a_solved_exercise_is_listed_as_passed(workspace):
    shutil.copy(ROOT / "reference" / "sdpa.py", workspace / "exercises" / "sdpa.py")
    report_file = workspace / "r.json"
    result = run("check", "sdpa", "--json", str(report_file))
    assert result.exit_code == 0
    assert json.loads(report_file.read_text())["score"] > 0
    assert "passed" in run("list").output


def test_check_several_topics_from_a_folder_writes_the_combined_report(workspace, tmp_path):
    folder = tmp_path / "attempt"
    folder.mkdir()
    shutil.copy(ROOT / "reference" / "sdpa.py", folder / "sdpa.py")
    shutil.copy(ROOT / "exercises" / "masking.py", folder / "masking.py")
    result = run("check", "sdpa", "masking", "--impl", str(folder), "--json", "-")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [t["topic"] for t in report["topics"]] == ["sdpa", "masking"]
    assert report["score"] == report["topics"][0]["max_score"]
    assert report["max_score"] == sum(t["max_score"] for t in report["topics"])


@pytest.mark.parametrize("args,says", [
    (["check", "sdpa", "--impl", "/no/such/file.py"], "no such file"),
    (["check", "sdpa", "masking", "--impl", __file__], "grades one topic"),
    (["check", "nope"], "unknown topic"),
    (["check", "sdpa", "--device", "gpu"], "Invalid value"),
    (["check", "sdpa", "--timeout", "0"], "Invalid value"),
])
def test_bad_check_usage_exits_2_without_a_traceback(workspace, args, says):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output


def test_check_cuda_without_a_gpu_is_a_usage_error(workspace):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = CliRunner().invoke(cli, ["check", "sdpa", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA device" in result.output


def test_a_deleted_exercise_is_reported_with_the_fix(workspace):
    (workspace / "exercises" / "sdpa.py").unlink()
    result = CliRunner().invoke(cli, ["check", "sdpa"])
    assert result.exit_code == 2 and "seqlings reset sdpa" in result.output


def test_reset_keeps_a_backup_and_restores_the_stub(workspace):
    mine = workspace / "exercises" / "sdpa.py"
    pristine = mine.read_text()
    mine.write_text("# my precious attempt\n")
    result = run("reset", "sdpa")
    assert result.exit_code == 0
    assert mine.read_text() == pristine
    backups = list((workspace / ".seqlings" / "backups").glob("sdpa-*.py"))
    assert len(backups) == 1 and backups[0].read_text() == "# my precious attempt\n"
    assert "nothing to do" in run("reset", "sdpa").output
    mine.write_text("# second attempt\n")
    run("reset", "sdpa")
    assert len(list((workspace / ".seqlings" / "backups").glob("sdpa-*.py"))) == 2


def test_reset_recreates_a_deleted_exercise(workspace):
    (workspace / "exercises" / "masking.py").unlink()
    assert run("reset", "masking").exit_code == 0
    assert "raise NotImplementedError" in (workspace / "exercises" / "masking.py").read_text()


def test_progress_survives_a_crash_mid_write(workspace):
    """A transaction that dies half way leaves the earlier records intact."""
    from grader import progress

    progress.record_check({"topic": "sdpa", "impl": "exercises/sdpa.py", "score": 1.0, "max_score": 2.0})
    with pytest.raises(RuntimeError):
        with progress.connect() as conn:
            conn.execute("INSERT INTO checks (topic, impl, score, max_score, at, report) "
                         "VALUES ('sdpa', 'exercises/sdpa.py', 2, 2, 1e12, '{}')")
            raise RuntimeError("power cut")
    assert progress.last_checks({"sdpa": "exercises/sdpa.py"}) == {"sdpa": (1.0, 2.0)}


def test_watch_moves_on_when_a_topic_passes(workspace, monkeypatch):
    """Solve sdpa before watching: watch checks it, sees full marks and moves to the next topic."""
    import grader.cli as cli_module

    shutil.copy(ROOT / "reference" / "sdpa.py", workspace / "exercises" / "sdpa.py")
    order = course.names()
    nxt = order[order.index("sdpa") + 1] if order[-1] != "sdpa" else None

    def stop(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.time, "sleep", stop)
    result = CliRunner().invoke(cli, ["watch", "sdpa"])
    assert "sdpa passed" in result.output or "Every topic done" in result.output
    if nxt:
        assert f"Next: {nxt}" in result.output


def test_check_seed_random_draws_a_seed_and_reports_it(workspace):
    result = run("check", "sdpa", "--impl", "reference", "--seed", "random", "--json", "-")
    assert result.exit_code == 0
    seed = json.loads(result.output)["seed"]
    assert 0 < seed < 2**31
    shown = run("check", "sdpa", "--impl", "reference", "--seed", str(seed))
    assert f"replay with --seed {seed}" in shown.output


@pytest.mark.parametrize("bad", ["abc", "-1", str(2**31)])
def test_check_refuses_a_bad_seed(workspace, bad):
    result = run("check", "sdpa", "--seed", bad)
    assert result.exit_code == 2
    assert "--seed" in result.output
