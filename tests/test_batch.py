"""Grading a class: grade-batch over fake students, the student bundle, the Gradescope autograder.

One batch run (module fixture) grades five students of `clipping`: a correct
one, a mutant, one whose code crashes its process, one that hangs, and one
handing in an nbgrader notebook; the other tests read its rows and journal.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import batch, cli_instructor, course, gradescope, release
from tests.helpers import mutants

# Expensive module fixtures: keep this file on one xdist worker.
pytestmark = pytest.mark.xdist_group("batch")

TOPIC = "clipping"
TIMEOUT = "20"  # seconds per submission: the hanging student costs this much
CRASHES = '''\
import os


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    os._exit(3)


def clip_grad_value(parameters, clip_value):
    os.abort()
'''
HANGS = '''\
def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    while True:
        pass


clip_grad_value = clip_grad_norm
'''


def run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def reference() -> str:
    return course.topic(TOPIC).reference.read_text()


def notebook(solution: str, setup: str = "import math\nfrom typing import Iterable\n\nimport torch\n", test: str = "assert False\n") -> dict:
    """A minimal nbgrader notebook: a locked setup cell, a solution cell, a test cell, some markdown."""
    def cell(kind, source, **nbgrader):
        meta = {"nbgrader": nbgrader} if nbgrader else {}
        extra = {"outputs": [], "execution_count": None} if kind == "code" else {}
        return {"cell_type": kind, "metadata": meta, "source": source.splitlines(keepends=True), **extra}

    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        cell("markdown", "# Clipping\nFill in the functions."),
        cell("code", setup, grade=False, solution=False, locked=True, grade_id="setup"),
        cell("code", solution, grade=False, solution=True, locked=False, grade_id="solution"),
        cell("code", test, grade=True, solution=False, locked=True, points=5, grade_id="tests"),
    ]}


def solution_cell() -> str:
    """The reference without its docstring and imports: what a student types in the solution cell."""
    source = reference()
    docstring_end = ast.parse(source).body[0].end_lineno
    lines = source.splitlines(keepends=True)[docstring_end:]
    return "".join(line for line in lines if not line.startswith(("import ", "from ")))


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("submissions")
    files = {"alice": reference(), "bob": mutants(TOPIC)[0].source(reference()), "carol": CRASHES, "dave": HANGS}
    for student, source in files.items():
        (root / student).mkdir()
        (root / student / f"{TOPIC}.py").write_text(source)
    (root / "erin" / "week1").mkdir(parents=True)  # nbgrader's STUDENT/ASSIGNMENT/TOPIC.ipynb
    (root / "erin" / "week1" / f"{TOPIC}.ipynb").write_text(json.dumps(notebook(solution_cell())))
    (root / "frank").mkdir()  # handed in another topic only: a missing row for clipping
    (root / "frank" / "masking.py").write_text("x = 1\n")
    return root


@pytest.fixture(scope="module")
def graded(submissions, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "grades.json"
    result = run(cli_instructor.grade_batch, submissions, "--out", out, "--topics", TOPIC,
                 "--workers", "2", "--timeout", TIMEOUT)
    return result, out


@pytest.fixture(scope="module")
def rows(graded) -> dict[str, dict]:
    _, out = graded
    return {r["student"]: r for r in json.loads(out.read_text())["submissions"]}


def test_grade_batch_grades_every_student_and_isolates_the_bad_ones(graded, rows):
    result, out = graded
    assert result.exit_code == 0, result.output
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "erin"]
    seeds = {r["seed"] for r in rows.values()}
    assert len(seeds) == 1 and seeds != {0}, "one seed drawn for the whole batch"
    assert rows["alice"]["score"] == rows["alice"]["max_score"] == course.topic(TOPIC).points
    assert rows["erin"]["score"] == rows["erin"]["max_score"], rows["erin"]["tests"][:2]
    assert 0 < rows["bob"]["score"] < rows["bob"]["max_score"]
    assert rows["carol"]["score"] == 0 and "error" in rows["carol"]["flags"]
    assert rows["dave"]["score"] == 0 and "timeout" in rows["dave"]["flags"]
    assert "Score distribution per topic" in result.output and "Most failed tests" in result.output
    assert "timed out: dave/clipping" in result.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["topics"][TOPIC]["full_marks"] == 2
    assert {t["student"] for t in summary["timed_out"]} == {"dave"}


def test_a_student_without_the_topic_is_not_a_student_of_it(submissions):
    jobs = batch.discover(submissions, [TOPIC, "masking"])
    frank = [j for j in jobs if j.student == "frank"]
    assert [(j.topic, j.path is None) for j in frank] == [(TOPIC, True), ("masking", False)]
    assert next(j for j in jobs if j.student == "erin").assignment == "week1"


def test_csv_and_gradescope_outputs_render_from_the_rows(graded, tmp_path):
    _, out = graded
    journal = batch.Journal(batch.journal_path(out))
    journal.close()
    rows = sorted(journal.rows.values(), key=lambda r: r["student"])
    summary = batch.summarize(rows)

    batch.write_output(rows, tmp_path / "grades.csv", "csv", summary)
    table = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert [r["student"] for r in table] == ["alice", "bob", "carol", "dave", "erin"]
    assert list(table[0]) == list(batch.CSV_COLUMNS)
    detail = json.loads(table[1]["detail"])
    assert {"id", "points", "max_points", "outcome", "message"} <= set(detail[0])
    assert float(table[1]["score"]) == sum(t["points"] for t in detail)

    written = batch.write_output(rows, tmp_path / "gs", "gradescope", summary)
    assert len(written) == 5
    results = json.loads((tmp_path / "gs" / "bob" / "results.json").read_text())
    assert_gradescope_schema(results)
    assert results["score"] == next(r["score"] for r in rows if r["student"] == "bob")


def assert_gradescope_schema(results: dict) -> None:
    assert isinstance(results["score"], float) and isinstance(results["output"], str)
    assert results["tests"]
    for t in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility", "status"} <= set(t)
        assert t["visibility"] in gradescope.VISIBILITIES and t["status"] in ("passed", "failed")
        assert 0 <= t["score"] <= t["max_score"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    public = {t["visibility"] for t in results["tests"] if gradescope.is_public(t["name"])}
    hidden = {t["visibility"] for t in results["tests"] if not gradescope.is_public(t["name"])}
    assert public == {"visible"} and hidden == {"after_published"}


def test_a_killed_batch_resumes_without_losing_or_duplicating_a_row(graded, submissions, tmp_path):
    """A journal with one finished row and a half-written line, as `kill -9` leaves it."""
    _, out = graded
    alice = next(line for line in batch.journal_path(out).read_text().splitlines() if '"alice"' in line)
    subset = tmp_path / "subs"
    for student in ("alice", "bob"):
        shutil.copytree(submissions / student, subset / student)
    target = tmp_path / "grades.csv"
    batch.journal_path(target).write_text(alice.replace(str(submissions), str(subset)) + '\n{"key": "bob\tcli')

    result = run(cli_instructor.grade_batch, subset, "--out", target, "--topics", TOPIC, "--workers", "2",
                 "--timeout", TIMEOUT)
    assert result.exit_code == 0, result.output
    assert "graded 1, resumed 1" in result.output
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["student"] for r in table] == ["alice", "bob"]
    # The resumed batch kept the seed its journal started with (drawn per batch, never 0).
    seed = json.loads(alice)["seed"]
    assert seed != 0 and {r["seed"] for r in table} == {str(seed)} and f"seed {seed}" in result.output
    lines = batch.journal_path(target).read_text().splitlines()
    assert [json.loads(line)["student"] for line in lines] == ["alice", "bob"]  # the torn line is gone

    again = run(cli_instructor.grade_batch, subset, "--out", target, "--topics", TOPIC, "--timeout", TIMEOUT)
    assert again.exit_code == 0 and "graded 0, resumed 2" in again.output
    assert len(list(csv.DictReader(io.StringIO(target.read_text())))) == 2


def test_notebook_source_takes_the_solution_cells_and_the_setup_imports(tmp_path):
    nb = notebook("from __future__ import annotations\n%matplotlib inline\ndef f(x):\n    return math.pi * x\n")
    source = batch.notebook_source(nb)
    compile(source, "nb.py", "exec")
    assert source.index("from __future__") < source.index("import math") < source.index("def f")
    assert "# %matplotlib inline" in source and "assert False" not in source
    plain = {"cells": [{"cell_type": "code", "metadata": {}, "source": "def g():\n    return 1\n"},
                       {"cell_type": "markdown", "metadata": {}, "source": "text"}]}
    assert "def g():" in batch.notebook_source(plain)

    course_dir = tmp_path / "course"
    (course_dir / "submitted" / "zoe" / "ps1").mkdir(parents=True)
    (course_dir / "submitted" / "zoe" / "ps1" / f"{TOPIC}.ipynb").write_text(json.dumps(nb))
    (course_dir / "submitted" / "zoe" / "ps1" / "timestamp.txt").write_text("2024-01-01 00:00:00")
    jobs = batch.discover(course_dir, [TOPIC])
    assert [(j.student, j.assignment, j.path.name) for j in jobs] == [("zoe", "ps1", f"{TOPIC}.ipynb")]
    (course_dir / "submitted" / "zoe" / "ps2").mkdir()
    (course_dir / "submitted" / "zoe" / "ps2" / f"{TOPIC}.ipynb").write_text(json.dumps(nb))
    with pytest.raises(batch.BatchError, match="--assignment"):
        batch.discover(course_dir, [TOPIC])
    assert batch.discover(course_dir, [TOPIC], assignment="ps2")[0].assignment == "ps2"


def test_grade_batch_user_errors_exit_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(cli_instructor.grade_batch, tmp_path / "empty", "--out", tmp_path / "g.csv")
    assert result.exit_code == 2 and "no submissions" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run(cli_instructor.grade_batch, tmp_path / "empty", "--out", tmp_path / "g.csv", "--topics", "nope")
    assert result.exit_code == 2 and "unknown topic" in result.output


# -- the student bundle -------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "kit"
    result = run(cli_instructor.release, out, "--topics", TOPIC)
    assert result.exit_code == 0, result.output
    return out


def in_bundle(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    code = "import sys; sys.argv[0] = 'seqlings'; from grader.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if k not in ("SEQLINGS_HOME", "SEQLINGS_DB", "PYTHONPATH")}
    env["SEQLINGS_DB"] = str(bundle / ".seqlings" / "test.db")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=bundle, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_bundle_holds_no_reference_code_and_no_hidden_test(bundle):
    grader_source = course.topic(TOPIC).grader.read_text()
    public, hidden = release.split_tests(grader_source)
    assert public and hidden
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".pyc" or "reference" in p.parts]
    blob = b"\n".join(p.read_bytes() for p in files)
    for name in hidden:
        assert not re.search(rb"(?<!\w)(test_)?" + name.removeprefix("test_").encode() + rb"(?!\w)", blob), name
    for name in public:
        assert name.encode() in (bundle / "grader" / "checks" / f"test_{TOPIC}.py").read_bytes()
    assert b"def _total_norm" not in blob  # the reference's private helper
    assert release.audit(bundle) == []
    assert sorted(p.name for p in (bundle / "grader" / "checks").iterdir()) == ["__init__.py", f"test_{TOPIC}.py"]
    assert (bundle / "exercises" / f"{TOPIC}.py").read_text() == (bundle / "grader" / "pristine" / f"{TOPIC}.py").read_text()
    assert release.bundle_info(bundle)["topics"] == [TOPIC]


def test_the_audit_catches_a_compiled_hidden_grader(bundle, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(bundle, leaky)
    py_compile.compile(str(course.topic(TOPIC).grader), cfile=str(leaky / "grader" / "checks" / "hidden.pyc"))
    problems = release.audit(leaky)
    assert any("compiled file" in p for p in problems) and any("names the hidden test" in p for p in problems)
    shutil.copyfile(course.topic(TOPIC).reference, leaky / "exercises" / "solution.py")
    assert any("holds a line of reference/clipping.py" in p for p in release.audit(leaky))


def test_the_bundles_public_tests_pass_on_the_reference_and_fail_on_the_stub(bundle):
    ok = in_bundle(bundle, "check", TOPIC, "--impl", str(course.topic(TOPIC).reference), "--json", "-")
    assert ok.returncode == 0, ok.stderr[-2000:]
    report = json.loads(ok.stdout)
    public = release.split_tests(course.topic(TOPIC).grader.read_text())[0]
    assert report["score"] == report["max_score"] > 0
    assert {t["id"].split("::")[1].split("[")[0] for t in report["tests"]} == {n.removeprefix("test_") for n in public}
    stub = in_bundle(bundle, "check", TOPIC, "--json", "-")
    assert stub.returncode == 1, stub.stderr[-2000:]
    assert json.loads(stub.stdout)["score"] == 0


def test_the_bundle_says_hidden_tests_are_graded_by_the_instructor(bundle):
    if "check_note" not in (course.kit_root() / "grader" / "cli.py").read_text():
        pytest.skip("grader/cli.py does not print release.check_note() yet")
    result = in_bundle(bundle, "check", TOPIC, "--impl", str(course.topic(TOPIC).reference))
    assert result.returncode == 0
    assert "hidden tests are graded by your instructor" in " ".join(result.stdout.split())


def test_release_refuses_to_overwrite_what_is_not_a_bundle(tmp_path, bundle):
    (tmp_path / "notes.txt").write_text("mine")
    result = run(cli_instructor.release, tmp_path, "--topics", TOPIC, "--force")
    assert result.exit_code == 2 and "not an earlier bundle" in result.output
    assert (tmp_path / "notes.txt").exists()


# -- Gradescope ---------------------------------------------------------------------

def test_run_autograder_writes_results_json_in_a_simulated_autograder_tree(tmp_path):
    archive = tmp_path / "autograder.zip"
    result = run(cli_instructor.gradescope, archive, "--topics", TOPIC, "--timeout", TIMEOUT)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder", f"kit/grader/checks/test_{TOPIC}.py"} <= set(names)
        assert not [n for n in names if "reference/" in n or n.endswith(".pyc")]
        assert (zf.getinfo("run_autograder").external_attr >> 16) & 0o111
        root = tmp_path / "autograder"
        zf.extractall(root / "source")
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission" / "work").mkdir(parents=True)  # uploaded inside a folder: still found
    (root / "submission" / "work" / f"{TOPIC}.py").write_text(mutants(TOPIC)[0].source(reference()))
    env = {**os.environ, gradescope.ROOT_ENV: str(root), "SEQLINGS_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_schema(results)
    assert 0 < results["score"] < course.topic(TOPIC).points
    assert "execution_time" in results
    assert re.search(r"drawn with seed [1-9]\d*", results["output"]), results["output"]  # per run, unpredictable
