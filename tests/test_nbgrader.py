"""The nbgrader export, end to end with the real nbgrader: generate, submit, autograde, export, feedback.

One small topic (clipping) goes through the whole flow; every topic's
notebook is generated, validated with nbformat and released in-process with
nbgrader's own preprocessors. The slow part is one `nbgrader autograde` run
over four submissions, shared by the tests through a module fixture.
"""

from __future__ import annotations

import ast
import csv
import html
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

nbgrader = pytest.importorskip("nbgrader")
nbformat = pytest.importorskip("nbformat")

from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, IgnorePattern  # noqa: E402
from nbgrader.utils import determine_grade  # noqa: E402

from grader import course, engine, nbgrader_export, notebook_runtime, stubs  # noqa: E402
from grader.cli_nbgrader import nbgrader as nbgrader_command  # noqa: E402
from tests.helpers import mutants  # noqa: E402

# Expensive module fixtures: keep this file on one xdist worker.
pytestmark = pytest.mark.xdist_group("nbgrader")

TOPIC = "clipping"  # the fastest topic to grade that has private helpers to hide
MUTANT = "sum_of_norms"  # fails some cases of several tests: partial marks
ASSIGNMENT = "ps1"


def existing_topics() -> list[course.Topic]:
    return [t for t in course.topics() if t.reference.exists()]


def nbgrader_run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(course.kit_root()), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def release(nb):
    """What `nbgrader generate_assignment` does to the cells' sources, in-process."""
    nb = nbformat.from_dict(nb)
    resources = {"language": "python"}
    for pre in (ClearSolutions(), ClearHiddenTests()):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def distinctive(lines, at_least=20) -> set[str]:
    return {line.strip() for line in lines if len(line.strip()) >= at_least}


def reference_lines(topic: course.Topic) -> set[str]:
    """Lines of the reference's bodies that the stub does not have."""
    reference = topic.reference.read_text()
    stub = stubs.make_stub(topic, reference)
    return distinctive(reference.splitlines()) - distinctive(stub.splitlines(), 0)


def hidden_test_lines(topic: course.Topic) -> set[str]:
    """Code lines of the grader's hidden test functions (string-only lines left out: messages may show)."""
    source = topic.grader.read_text()
    lines = source.splitlines()
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and not any(
                "public" in ast.unparse(d) for d in node.decorator_list):
            body = lines[node.body[0].lineno - 1:node.end_lineno]
            found |= {line for line in distinctive(body) if not re.match(r"^[rf]?[\"']", line)}
    return found


def hidden_test_names(topic: course.Topic) -> set[str]:
    return {t.name for t in nbgrader_export.collect_tests(topic) if not t.public}


# -- every topic, in-process -------------------------------------------------------------

@pytest.mark.parametrize("topic", existing_topics(), ids=lambda t: t.name)
def test_every_topic_exports_a_valid_notebook_that_releases_as_the_stub(topic):
    nb = nbgrader_export.notebook(topic)
    nbformat.validate(nb)
    tests = nbgrader_export.collect_tests(topic)
    meta = [c.metadata["nbgrader"] for c in nb.cells]
    assert [m["grade_id"] for m in meta[:2]] == ["statement", "solution"]
    assert meta[1]["solution"] and not meta[1]["grade"] and not meta[1]["locked"]
    assert all(m["schema_version"] == 3 for m in meta)
    assert [m["grade_id"] for m in meta[2:]] == [t.grade_id for t in tests]
    assert all(m["grade"] and m["locked"] and not m["solution"] for m in meta[2:])
    assert sum(m["points"] for m in meta[2:]) == topic.points
    for cell, test in zip(nb.cells[2:], tests):
        assert ("### BEGIN HIDDEN TESTS" in cell.source) != test.public, test.function
    compile(nb.cells[1].source, f"{topic.name} solution cell", "exec")

    released = release(nb)
    answer = released.cells[1].source
    compile(answer, f"{topic.name} released answer cell", "exec")
    stub_fns = {n.name: ast.unparse(n.args) for n in ast.parse(stubs.make_stub(topic, topic.reference.read_text())).body
                if isinstance(n, ast.FunctionDef)}
    released_fns = {n.name: ast.unparse(n.args) for n in ast.parse(answer).body if isinstance(n, ast.FunctionDef)}
    assert released_fns == stub_fns
    text = "\n".join(c.source for c in released.cells) + nbformat.writes(released)
    assert not {line for line in reference_lines(topic) if line in text}
    assert not {t.name for t in tests if not t.public and t.name in text}


# -- clipping, end to end --------------------------------------------------------------

@dataclass
class Course:
    root: Path
    release: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # student -> score from `nbgrader export`
    cells: dict[str, dict[str, float]] = field(default_factory=dict)  # student -> grade_id -> score
    code: dict[str, str] = field(default_factory=dict)  # student -> the answer cell's code


def submissions() -> dict[str, str | None]:
    """Student id -> the code put into the answer cell of the release notebook (None: untouched)."""
    reference = course.topic(TOPIC).reference.read_text()
    mutant = next(m for m in mutants(TOPIC) if m.name == MUTANT)
    warns = reference.replace("    clip_value = float(clip_value)\n",
                              "    clip_value = float(clip_value)\n    torch.tensor(torch.ones(1))  # a UserWarning\n")
    # A real PyTorch UserWarning on stderr in every later cell (the test cells
    # included), in the answer cell itself, and in the graded function.
    warning = ("import warnings\nimport torch\nwarnings.simplefilter('always')\n"
               "get_ipython().events.register('pre_run_cell', lambda info: torch.tensor(torch.ones(1)))\n"
               "torch.tensor(torch.ones(1))\n\n" + warns)
    return {"reference": reference, "untouched": None, "mutant": mutant.source(reference), "warning": warning}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Course:
    root = tmp_path_factory.mktemp("course")
    result = CliRunner().invoke(nbgrader_command, [str(root), "--assignment", ASSIGNMENT, "--topics", TOPIC],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    nbgrader_run(root, "db", "assignment", "add", ASSIGNMENT)
    nbgrader_run(root, "generate_assignment", ASSIGNMENT)
    released = root / "release" / ASSIGNMENT / f"{TOPIC}.ipynb"
    out = Course(root, release=released.read_text())
    students = submissions()
    (root / "students.csv").write_text("id\n" + "\n".join(students) + "\n")
    nbgrader_run(root, "db", "student", "import", "students.csv")
    for student, code in students.items():
        nb = nbformat.reads(out.release, as_version=4)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "solution")
        if code is not None:
            answer.source = code
        out.code[student] = answer.source
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{TOPIC}.ipynb")
    nbgrader_run(root, "autograde", ASSIGNMENT)
    nbgrader_run(root, "export", "--to", str(root / "grades.csv"))
    with open(root / "grades.csv", newline="") as f:
        out.scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in out.code:
            notebook = gb.find_submission_notebook(TOPIC, ASSIGNMENT, student)
            out.cells[student] = {g.name: g.score for g in notebook.grades}
    nbgrader_run(root, "generate_feedback", ASSIGNMENT)
    return out


def engine_cells(report: dict, nb) -> dict[str, float]:
    """The engine's points summed per test function, keyed by the notebook's grade_id."""
    by_name = {}
    for t in report["tests"]:
        name = notebook_runtime.test_name(t["id"])
        by_name[name] = by_name.get(name, 0.0) + t["points"]
    ids = {c.source.rsplit('check("', 1)[1].split('"')[2]: c.metadata["nbgrader"]["grade_id"]
           for c in nb.cells[2:]}
    return {ids[name]: points for name, points in by_name.items()}


def test_the_release_holds_no_reference_code_and_no_hidden_test_code(graded):
    topic = course.topic(TOPIC)
    assert len(reference_lines(topic)) > 10 and len(hidden_test_lines(topic)) > 20  # the search has teeth
    assert "def clip_grad_norm(" in graded.release and "raise NotImplementedError()" in graded.release
    assert not {line for line in reference_lines(topic) if line in graded.release}
    assert not {line for line in hidden_test_lines(topic) if line in graded.release}
    assert not {name for name in hidden_test_names(topic) if name in graded.release}
    assert "def _total_norm" not in graded.release  # the reference's private helper


def test_autograde_gives_full_marks_to_the_reference_pasted_into_the_release(graded):
    assert graded.scores["reference"] == course.topic(TOPIC).points == 34


def test_autograde_gives_zero_to_the_untouched_release(graded, tmp_path):
    assert graded.scores["untouched"] == 0
    path = tmp_path / f"{TOPIC}.py"
    path.write_text(graded.code["untouched"])
    assert engine.grade(TOPIC, path, device="auto")["score"] == 0


def test_autograde_gives_a_known_wrong_solution_the_engines_partial_marks_test_by_test(graded, tmp_path):
    path = tmp_path / f"{TOPIC}.py"
    path.write_text(graded.code["mutant"])
    report = engine.grade(TOPIC, path, device="auto")
    assert 0 < graded.scores["mutant"] < report["max_score"]
    assert graded.scores["mutant"] == report["score"]
    source = nbformat.reads((graded.root / "source" / ASSIGNMENT / f"{TOPIC}.ipynb").read_text(), as_version=4)
    assert graded.cells["mutant"] == engine_cells(report, source)


def test_the_reference_scores_the_same_in_nbgrader_and_the_engine_test_by_test(graded):
    report = engine.grade(TOPIC, "reference", device="auto")
    source = nbformat.reads((graded.root / "source" / ASSIGNMENT / f"{TOPIC}.ipynb").read_text(), as_version=4)
    assert graded.cells["reference"] == engine_cells(report, source)


def test_a_pytorch_warning_on_stderr_does_not_zero_a_correct_answer(graded):
    assert graded.scores["warning"] == course.topic(TOPIC).points


def test_the_configured_ignore_pattern_drops_a_real_pytorch_warning_and_only_that():
    import warnings

    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.tensor(torch.ones(1))
    text = warnings.formatwarning(caught[0].message, caught[0].category, caught[0].filename, caught[0].lineno)
    cell = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {"grade": True, "points": 2}})
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text),
                    nbformat.v4.new_output("stream", name="stdout", text="✓ passed\n")]
    assert determine_grade(cell) == (0, 2)  # nbgrader's trap, without the pattern
    ignore = IgnorePattern(pattern=nbgrader_export.WARNING_PATTERN)
    kept, _ = ignore.preprocess_cell(nbformat.from_dict(cell), {}, 0)
    assert determine_grade(kept) == (2, 2)
    cell.outputs[0].text = "Traceback (most recent call last):\nRuntimeError: boom\n"
    kept, _ = ignore.preprocess_cell(nbformat.from_dict(cell), {}, 0)
    assert determine_grade(kept) == (0, 2)


def test_the_feedback_holds_no_hidden_test_code(graded):
    topic = course.topic(TOPIC)
    pages = sorted((graded.root / "feedback").glob(f"*/{ASSIGNMENT}/{TOPIC}.html"))
    assert len(pages) == 4
    leaks = set()
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaks |= {line for line in hidden_test_lines(topic) if line in text}
    assert not leaks
    mutant = html.unescape(re.sub(r"<[^>]+>", "", (graded.root / "feedback" / "mutant" / ASSIGNMENT
                                                    / f"{TOPIC}.html").read_text()))
    assert "the per-tensor norms were added up" in mutant  # the grader's message does reach the student


# -- the command -------------------------------------------------------------------------

def test_the_command_writes_the_config_once_and_updates_the_notebooks(tmp_path):
    run = CliRunner().invoke
    result = run(nbgrader_command, [str(tmp_path), "--topics", "masking,clipping"])
    assert result.exit_code == 0, result.output
    config = tmp_path / "nbgrader_config.py"
    assert f"c.CourseDirectory.root = {str(tmp_path)!r}" in config.read_text()
    assert "c.IgnorePattern.enabled = True" in config.read_text()
    assert sorted(p.name for p in (tmp_path / "source" / "seqlings").iterdir()) == ["clipping.ipynb", "masking.ipynb"]

    config.write_text(config.read_text() + "c.Execute.timeout = 999\n")
    notebook = tmp_path / "source" / "seqlings" / "masking.ipynb"
    notebook.write_text(notebook.read_text().replace("Padding", "Padd1ng"))
    result = run(nbgrader_command, [str(tmp_path), "--topics", "masking", "--topics", "clipping"])
    assert result.exit_code == 0, result.output
    assert "c.Execute.timeout = 999" in config.read_text()
    assert re.search(r"updated\s+\S+masking\.ipynb", result.output)
    assert re.search(r"unchanged\s+\S+clipping\.ipynb", result.output)
    assert "Padd1ng" not in notebook.read_text()


@pytest.mark.parametrize("args, message", [
    (["--topics", "clippin"], "unknown topic 'clippin'. Did you mean 'clipping'?"),
    (["--assignment", "week 3"], "assignment name 'week 3' must be letters, digits, _ and -"),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, args, message):
    result = CliRunner().invoke(nbgrader_command, [str(tmp_path), *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert not (tmp_path / "source").exists()


def test_the_command_has_help_with_an_example_and_help_on_every_option():
    result = CliRunner().invoke(nbgrader_command, ["--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "seqlings nbgrader" in result.output
    assert all(p.help for p in nbgrader_command.params if isinstance(p, click.Option))


# -- the runtime's view of a notebook ------------------------------------------------------

def test_the_graded_module_keeps_definitions_and_drops_scratch_work_and_test_cells():
    cells = [
        "from __future__ import annotations\nimport torch\nSCALE = 2.0\nunused = torch.ones(3)",
        "def double(x):\n    return x * SCALE\n\ndouble(torch.ones(2))\nout = double(1)",
        "@torch.no_grad()\ndef double(x):  # redefined: the later one wins, as in the kernel\n    return x + x",
        'from grader.notebook_runtime import check\ncheck("clipping", "x")',
        "def broken(:\n",
        "%timeit double(1)",
    ]
    source = notebook_runtime.module_source(cells)
    assert source.startswith("from __future__ import annotations\n")
    assert "SCALE = 2.0" in source and "unused" not in source and "out = " not in source
    assert "double(torch.ones(2))" not in source and "grader" not in source and "broken" not in source
    assert source.index("return x * SCALE") < source.index("@torch.no_grad()\ndef double(x):")
    namespace: dict = {}
    exec(compile(source, "graded", "exec"), namespace)
    assert namespace["double"](3) == 6


def test_check_outside_a_notebook_says_where_to_call_it():
    with pytest.raises(notebook_runtime.NotInANotebook, match="call it from a notebook cell"):
        notebook_runtime.check(TOPIC, "a_single_tensor_is_accepted_as_parameters")
