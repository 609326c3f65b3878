"""What the test cells of a seqlings nbgrader notebook call: ``check(topic, test)``.

A test cell holds no test code, only a call by test id::

    from grader.notebook_runtime import check
    check("clipping", "returned_norm_is_the_total_norm_over_all_gradients")

``check`` rebuilds the student's module from the notebook (the imports,
functions, classes and the assignments they use, from every code cell run so
far, in run order), writes it to a temporary file and grades it with the
kit's own engine in a fresh ``python -I`` process, where the grader compares
and the submission runs in its isolated child as in ``seqlings check``. So the
hidden test bodies never reach the notebook, its outputs or nbgrader's
feedback, and patching torch or the kit inside the kernel cannot change what
the grader compares. What it cannot prevent: this function itself runs in the
student's kernel, and a student can replace it there; ``seqlings grade-batch``
is the tamper-proof path.

The whole topic is graded once per version of the code (the first test cell
pays for it, about the time of ``seqlings check TOPIC``); later cells read
that report. A cell's points are the sum over the test function's
parametrized cases, as in ``seqlings check``:

- every case passed: nothing is returned, so nbgrader gives the cell full points;
- some passed: the failures are printed and the points earned are returned as
  the cell's value, which nbgrader reads as partial credit;
- none passed: ``AssertionError`` with the grader's messages, 0 points.

Nothing here writes to stderr (nbgrader scores a test cell that does 0):
warnings are silenced and the grading process's stderr is captured.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

# Seconds for the grading process: the engine's topic timeout (120 s) plus
# two interpreter starts. nbgrader's cell timeout must exceed it; the
# nbgrader_config.py that `seqlings nbgrader` writes sets 300.
GRADE_TIMEOUT = 240

# Statements of the student's cells that make up the graded module. Anything
# else at top level (a call, a print, a plot, a loop) is their scratch work.
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_ASSIGNMENTS = (ast.Assign, ast.AnnAssign)

KIT_ROOT = Path(__file__).resolve().parent.parent

_reports: dict[tuple[str, str], dict] = {}


class NotInANotebook(RuntimeError):
    """``check`` was called outside an IPython kernel, where there is no notebook to read."""


def check(topic: str, test: str) -> float | None:
    """Grade the notebook's code on grader test ``test`` of ``topic``; see the module docstring."""
    __tracebackhide__ = True  # IPython shows the grader's message, not this function's code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = grade_notebook(topic)
    cases = [t for t in report["tests"] if test_name(t["id"]) == test]
    if not cases:
        raise LookupError(f"the {topic} grader of this seqlings install has no test {test!r}: "
                          "update seqlings (`pip install -U seqlings`) to the version the notebook was made with")
    earned = sum(t["points"] for t in cases)
    worth = sum(t["max_points"] for t in cases)
    lost = [f"✗ {t['id']} ({t['outcome']}): {t['message']}" for t in cases if t["outcome"] != "passed"]
    if not lost:
        print(f"✓ {test}: {earned:g}/{worth:g}")
        return None
    if earned == 0:
        raise AssertionError("\n".join([f"{test}: 0/{worth:g}", *lost]))
    print("\n".join([f"{test}: {earned:g}/{worth:g}", *lost]))
    return float(earned)


def test_name(test_id: str) -> str:
    """``clipping::a_case[float64]`` -> ``a_case``: the grader's test function without ``test_``."""
    return test_id.split("::", 1)[-1].split("[", 1)[0]


def grade_notebook(topic: str) -> dict:
    """The engine's report for the code of this notebook (graded once per version of that code)."""
    source = module_source(notebook_cells())
    key = (topic, hashlib.sha256(source.encode()).hexdigest())
    if key not in _reports:
        _reports[key] = grade_source(topic, source)
    return _reports[key]


def notebook_cells() -> list[str]:
    """The code of every cell this kernel has run, in run order (IPython's ``In``, magics expanded)."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is None:
        raise NotInANotebook("check() reads the notebook's code from its IPython kernel: "
                             "call it from a notebook cell, or grade a file with `seqlings check`")
    return list(shell.history_manager.input_hist_parsed[1:])


def module_source(cells: list[str]) -> str:
    """The student's module: the definitions of ``cells`` in order, later ones winning as in the kernel.

    Cells that import the kit (the test cells) and cells that do not parse are
    left out. Imports, functions and classes are kept; an assignment is kept
    when a kept definition reads one of its names (a constant, a type alias),
    so scratch work such as ``out = clip_grad_norm(...)`` cannot break the import.
    """
    future: list[str] = []
    kept: list[tuple[ast.stmt, str]] = []
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        if _imports_the_kit(tree):
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                future.append(ast.get_source_segment(cell, node))
            elif isinstance(node, _DEFINITIONS + _ASSIGNMENTS):
                kept.append((node, _segment(cell, node)))
    wanted = _names_read_by(node for node, _ in kept if isinstance(node, _DEFINITIONS))
    keep_assignment: dict[int, bool] = {}
    grew = True
    while grew:  # an assignment kept for a definition may itself read other assigned names
        grew = False
        for i, (node, _) in enumerate(kept):
            if isinstance(node, _ASSIGNMENTS) and not keep_assignment.get(i) and _targets(node) & wanted:
                keep_assignment[i] = grew = True
                wanted |= _names_read_by([node])
    body = [text for i, (node, text) in enumerate(kept)
            if isinstance(node, _DEFINITIONS) or keep_assignment.get(i)]
    return "\n\n".join(list(dict.fromkeys(future)) + body) + "\n"


def _imports_the_kit(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "grader" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "grader":
            return True
    return False


def _segment(cell: str, node: ast.stmt) -> str:
    """The statement's text with its decorators (whole lines: top-level statements start at column 0)."""
    lines = cell.splitlines()
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    if node.col_offset == 0 and not any(";" in line for line in lines[start - 1:node.end_lineno]):
        return "\n".join(lines[start - 1:node.end_lineno])
    return ast.get_source_segment(cell, node) or ast.unparse(node)


def _names_read_by(nodes) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(node: ast.stmt) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def grade_source(topic: str, source: str) -> dict:
    """Grade ``source`` as ``TOPIC.py`` with the engine, in a fresh isolated interpreter; return its report."""
    with tempfile.TemporaryDirectory(prefix="seqlings-nb-") as scratch:
        path, out = Path(scratch) / f"{topic}.py", Path(scratch) / "report.json"
        path.write_text(source)
        # -I: no PYTHON* variables, no user site, no cwd on sys.path; the kit's own root goes first.
        boot = f"import sys; sys.path.insert(0, {str(KIT_ROOT)!r}); import grader.notebook_runtime as r; r.main(sys.argv[1:])"
        try:
            done = subprocess.run([sys.executable, "-I", "-c", boot, topic, str(path), str(out)],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=GRADE_TIMEOUT, cwd=scratch)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"grading {topic} took over {GRADE_TIMEOUT} s and was stopped: "
                                 "look for a loop that never ends") from None
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the seqlings grader could not run on this notebook: {last}")
        report = json.loads(out.read_text())
    if report.get("topic") != topic or not isinstance(report.get("tests"), list):
        raise RuntimeError("the seqlings grader returned a malformed report")
    return report


def main(argv: list[str]) -> None:
    """In the grading process: grade FILE as TOPIC and write the engine's report as JSON to OUT."""
    topic, path, out = argv
    warnings.simplefilter("ignore")
    from grader import engine

    report = engine.grade(topic, path)
    Path(out).write_text(json.dumps(report))
