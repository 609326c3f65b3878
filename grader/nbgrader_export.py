"""Export the course as nbgrader source notebooks, one per topic, from the reference, stub and grader.

Nothing here is kept by hand: each notebook is built from ``reference/TOPIC.py``
(the solution), the stub ``make_stub`` makes from it (what students see) and
the tests collected from ``grader/checks/test_TOPIC.py`` (points, public or
hidden). The layers call one way, like nbgrader's own pipeline: the command
(``grader/cli_nbgrader.py``) calls ``export_course``, which builds each
notebook by running the steps of ``STEPS`` in order. Every step has one
interface, ``step(nb, sources) -> nb``.

A notebook, ``source/ASSIGNMENT/TOPIC.ipynb``:

1. ``statement``, read-only markdown: title, summary, functions, what is off
   limits, the course-note sections.
2. ``solution``, an autograded answer: the stub, where each function's
   ``raise NotImplementedError`` becomes a ``### BEGIN SOLUTION`` region
   holding the reference body (private helpers of the reference nested in
   the functions that use them, so nothing outside a region is a solution).
   ``nbgrader generate_assignment`` turns it back into the stub.
3. One autograder test cell per grader test function, in the grader's order,
   worth the sum of its parametrized cases' points. A public test's cell is
   visible and its ``grade_id`` is the test function's name; a hidden test's
   call sits in a ``### BEGIN HIDDEN TESTS`` region and its ``grade_id`` is
   ``hidden_`` and a hash of that name, since the names say what the hidden
   tests probe and the release keeps every cell's metadata. Either way the
   cell only calls ``grader.notebook_runtime.check(topic, test)``: no test
   code is in the notebook, so none reaches a release, a submission or the
   feedback.

Cell metadata follows nbgrader's schema version 3. The ``grade_id`` values
are permanent: nbgrader keys grades by them, so renaming a grader test (or
making it public) orphans its recorded grades.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader import course, stubs

SCHEMA_VERSION = 3
STATEMENT_ID = "statement"
SOLUTION_ID = "solution"
# grade_id is a database key of nbgrader (at most 128 characters); keep it a plain word.
GRADE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# nbgrader scores a test cell 0 when it printed anything to stderr. The kit's
# test cells print none, but a warning raised in the kernel can still land in
# one; this drops stderr output holding a Python warning ("file.py:12: UserWarning: ...").
WARNING_PATTERN = r"(?m)^.*:\d+: \w*Warning: "

CONFIG = '''\
# nbgrader configuration written by `seqlings nbgrader`. It is yours now:
# seqlings writes it only when the course has none.
c = get_config()  # noqa: F821 (nbgrader defines get_config)

c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}

# The notebooks run on the python3 kernel of the environment where seqlings is installed.
c.Execute.kernel_name = "python3"
# The first test cell of a notebook grades the whole topic (seconds to a minute);
# nbgrader's default of 30 s per cell is too short for the larger topics.
c.Execute.timeout = 300

# nbgrader scores a test cell 0 when anything reaches stderr: drop Python
# warnings there (e.g. a PyTorch UserWarning) so a warning alone costs nothing.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = {pattern!r}
'''


class ExportError(ValueError):
    """The course cannot be exported as it stands (a bad name, a grader that does not collect)."""


@dataclass(frozen=True)
class GraderTest:
    """One test function of a grader: its cases collected by pytest, points summed."""

    function: str  # e.g. test_a_single_tensor_is_accepted_as_parameters
    points: float
    cases: int
    public: bool

    @property
    def name(self) -> str:
        """The name ``check`` takes: the function without ``test_``, as in the report's ids."""
        return self.function.removeprefix("test_")

    @property
    def grade_id(self) -> str:
        """nbgrader's key for the cell: the function's name, or for a hidden test a hash that does not tell."""
        if self.public:
            return self.function
        return "hidden_" + hashlib.sha256(self.function.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Sources:
    """Everything a notebook is made of."""

    topic: course.Topic
    reference: str
    stub: str
    tests: tuple[GraderTest, ...]


Step = Callable[["NotebookNode", Sources], "NotebookNode"]  # noqa: F821 (nbformat's, imported lazily)


def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise ExportError("nbformat is not installed: pip install 'seqlings[nbgrader]'") from None
    return nbformat


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _cell_id(grade_id: str) -> str:
    """nbformat cell ids are at most 64 characters; keep them stable so re-exporting changes nothing."""
    if len(grade_id) <= 64:
        return grade_id
    import zlib

    return f"{grade_id[:55]}-{zlib.crc32(grade_id.encode()):08x}"


# -- steps ---------------------------------------------------------------------------

def add_statement(nb, src: Sources):
    """The exercise statement as a read-only markdown cell."""
    t = src.topic
    stub_tree = ast.parse(src.stub)
    functions = [n for n in stub_tree.body if isinstance(n, ast.FunctionDef) and n.name in t.functions]
    lines = [f"# {t.title}", "", t.summary.replace("\n", " "), "",
             f"Topic `{t.name}`, {t.points:g} points. Write the functions in the next cell, "
             "run it, then run the test cells below it. Hidden tests run when your notebook is graded.",
             "", "## Functions to write", ""]
    for fn in functions:
        doc = (ast.get_docstring(fn) or "").strip().splitlines()
        lines.append(f"- `{fn.name}({ast.unparse(fn.args)})`" + (f": {doc[0]}" if doc else ""))
    if t.forbidden:
        lines += ["", "## Off limits", "",
                  "These may not be called anywhere in your code (the grader checks): "
                  + ", ".join(f"`{name}`" for name in t.forbidden) + "."]
    lines += ["", "## Course notes", ""] + [f"- {note}" for note in t.notes]
    nb.cells.append(_nbformat().v4.new_markdown_cell(
        "\n".join(lines), id=STATEMENT_ID,
        metadata=_nbgrader(STATEMENT_ID, grade=False, solution=False, locked=True)))
    return nb


def add_solution(nb, src: Sources):
    """The autograded answer: the stub with the reference's bodies in solution regions."""
    nb.cells.append(_nbformat().v4.new_code_cell(
        solution_source(src.topic, src.reference, src.stub), id=SOLUTION_ID,
        metadata=_nbgrader(SOLUTION_ID, grade=False, solution=True, locked=False)))
    return nb


def add_test_cells(nb, src: Sources):
    """One autograder test cell per grader test function, visible when public, hidden otherwise."""
    for test in src.tests:
        call = ["from grader.notebook_runtime import check",
                f"check({json.dumps(src.topic.name)}, {json.dumps(test.name)})"]
        worth = _worth(test)
        if test.public:
            source = [f"# Test: {test.name.replace('_', ' ')} ({worth}).", *call]
        else:
            source = [f"# Hidden test ({worth}): it runs when your notebook is graded.",
                      "### BEGIN HIDDEN TESTS", *call, "### END HIDDEN TESTS"]
        nb.cells.append(_nbformat().v4.new_code_cell(
            "\n".join(source), id=_cell_id(test.grade_id),
            metadata=_nbgrader(test.grade_id, grade=True, solution=False, locked=True, points=test.points)))
    return nb


def set_kernel(nb, src: Sources):
    """nbgrader runs (and records) the notebook with the kernel named here."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def validate(nb, src: Sources):
    """Refuse a notebook nbgrader would reject or grade differently from `seqlings check`."""
    _nbformat().validate(nb)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    for grade_id in ids:
        if not GRADE_ID.match(grade_id):
            raise ExportError(f"{src.topic.name}: grade_id {grade_id!r} is not 1-128 letters, digits, _ or -; "
                              "rename the grader test")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ExportError(f"{src.topic.name}: grade_id used twice: {', '.join(duplicates)}")
    total = sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells)
    if abs(total - src.topic.points) > 1e-9:
        raise ExportError(f"{src.topic.name}: the test cells are worth {total:g} points, topics.toml says "
                          f"{src.topic.points:g}; make the grader's points markers and topics.toml agree")
    return nb


# The order is the notebook's: the statement is read first, the solution cell
# must run before any test cell, and the test cells follow the grader file's
# order. set_kernel comes before validate, which checks the finished notebook
# and so stays last.
STEPS: list[Step] = [
    add_statement,
    add_solution,
    add_test_cells,
    set_kernel,
    validate,
]


# -- the converter ---------------------------------------------------------------------

def notebook(topic: course.Topic):
    """The source notebook of ``topic``."""
    if not topic.reference.exists():
        raise ExportError(f"{topic.name}: no reference solution at {topic.reference}")
    reference = topic.reference.read_text()
    stub = stubs.make_stub(topic, reference).removeprefix(stubs.HEADER.format(name=topic.name))
    src = Sources(topic, reference, stub, collect_tests(topic))
    nb = _nbformat().v4.new_notebook()
    for step in STEPS:
        nb = step(nb, src)
    return nb


@dataclass(frozen=True)
class Written:
    path: Path
    status: str  # created, updated or unchanged


def export_course(root: Path, assignment: str, topics: list[course.Topic],
                  course_id: str = "seqlings") -> list[Written]:
    """Write ``nbgrader_config.py`` if ``root`` has none, and ``source/ASSIGNMENT/TOPIC.ipynb`` per topic."""
    nbformat = _nbformat()
    root = Path(root).resolve()
    written = []
    config = root / "nbgrader_config.py"
    if not config.exists():
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG.format(root=str(root), course_id=course_id, pattern=WARNING_PATTERN))
        written.append(Written(config, "created"))
    else:
        written.append(Written(config, "unchanged"))
    folder = root / "source" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for topic in topics:
        path = folder / f"{topic.name}.ipynb"
        text = nbformat.writes(notebook(topic)) + "\n"
        before = path.read_text() if path.exists() else None
        if before != text:
            path.write_text(text)
        written.append(Written(path, "created" if before is None else "unchanged" if before == text else "updated"))
    return written


# -- sources ---------------------------------------------------------------------------

def solution_source(topic: course.Topic, reference: str, stub: str) -> str:
    """The stub with each ``raise NotImplementedError`` replaced by a solution region of the reference body.

    The reference's private helpers (those the stub drops) go into the region
    of every function that uses them, as nested functions: outside a region
    nbgrader would leave them in the release, and a region at module level
    would become a module-level ``raise NotImplementedError()``.
    """
    ref_lines = reference.splitlines()
    ref_functions = {n.name: n for n in ast.parse(reference).body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    given = set(topic.todo.get("_given", []))
    helpers = {name: node for name, node in ref_functions.items() if name not in topic.functions and name not in given}
    for name in given & ref_functions.keys():
        if _uses(ref_functions[name], helpers):
            raise ExportError(f"{topic.name}: given function {name} calls a private helper; "
                              "list that helper in _given too")
    out = stub.splitlines()
    stub_functions = [n for n in ast.parse(stub).body
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in topic.functions]
    for fn in reversed(stub_functions):  # bottom up, so earlier line numbers stay valid
        last = fn.body[-1]
        if not (isinstance(last, ast.Raise) and "NotImplementedError" in ast.unparse(last)):
            raise ExportError(f"{topic.name}: the stub of {fn.name} does not end in raise NotImplementedError")
        if fn.name not in ref_functions:
            raise ExportError(f"{topic.name}: {fn.name} is in topics.toml but not in {topic.reference}")
        indent = " " * last.col_offset
        region = [f"{indent}### BEGIN SOLUTION"]
        for name in _helpers_of(ref_functions[fn.name], helpers):
            node = helpers[name]
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            region += textwrap.indent("\n".join(ref_lines[start - 1:node.end_lineno]), indent).splitlines() + [""]
        region += _body_lines(ref_functions[fn.name], ref_lines)
        region.append(f"{indent}### END SOLUTION")
        out[last.lineno - 1:last.end_lineno] = region
    return "\n".join(out).strip("\n") + "\n"


def _body_lines(fn: ast.FunctionDef, lines: list[str]) -> list[str]:
    """The function's body without its docstring, comments included."""
    first = fn.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    start = first.end_lineno if has_doc else first.lineno - 1
    return lines[start:fn.end_lineno]


def _uses(node: ast.AST, names) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in names}


def _helpers_of(fn: ast.FunctionDef, helpers: dict[str, ast.FunctionDef]) -> list[str]:
    """The private helpers ``fn`` calls, directly or through each other, in the reference's order."""
    found, todo = set(), list(_uses(fn, helpers))
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += _uses(helpers[name], helpers)
    return [name for name in helpers if name in found]


def _worth(test: GraderTest) -> str:
    each = test.points / test.cases
    points = f"{test.points:g} point{'s' if test.points != 1 else ''}"
    return points if test.cases == 1 else f"{points}: {test.cases} cases, {each:g} each"


class _Collector:
    def __init__(self) -> None:
        self.items: list = []
        self.errors: list[str] = []

    def pytest_collection_finish(self, session) -> None:
        self.items = list(session.items)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))


def collect_tests(topic: course.Topic) -> tuple[GraderTest, ...]:
    """The grader's test functions in file order, as pytest collects them with the grading plugin."""
    import pytest

    from grader import engine

    collector = _Collector()
    args = [str(topic.grader), "--collect-only", "-p", "grader.plugin", "-p", "no:cacheprovider",
            "-p", "no:terminal", "-p", "no:warnings", "-p", "no:randomly", "--import-mode=importlib",
            "--rootdir", str(topic.grader.parent), "-c", "/dev/null", "--topic", topic.name]
    with engine._LOCK:  # pytest keeps global state: one run at a time per process
        pytest.main(args, plugins=[collector])
    if collector.errors or not collector.items:
        raise ExportError(f"{topic.name}: the grader {topic.grader} did not collect: "
                          + ("; ".join(collector.errors) or "no tests")[:2000])
    tests: dict[str, GraderTest] = {}
    for item in collector.items:
        function = getattr(item, "originalname", None) or item.name.split("[")[0]
        marker = item.get_closest_marker("points")
        points = float(marker.args[0]) if marker else 1.0
        public = item.get_closest_marker("public") is not None
        seen = tests.get(function)
        tests[function] = GraderTest(function, points + (seen.points if seen else 0.0),
                                     1 + (seen.cases if seen else 0), public)
    return tuple(tests.values())
