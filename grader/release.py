"""The student bundle: a self-contained kit with the stubs and the public tests only.

``build`` writes, in order:

1. the ``grader`` package (engine, CLI, quizzes code) and ``topics.toml``
   cut down to the chosen topics;
2. ``grader/checks/test_TOPIC.py`` holding only the ``@pytest.mark.public``
   tests of the hidden grader, with the helpers, fixtures and constants
   they use (``public_tests_source``: an AST filter, nothing is imported);
3. ``exercises/TOPIC.py`` stubs made from the references, and the same
   stubs as ``grader/pristine/TOPIC.py`` for ``seqlings reset``;
4. the quiz banks, a student README and pyproject;
5. ``grader/release.json``, the marker that says "student bundle" (the CLI
   reads it through ``bundle_info``: ``seqlings check`` says hidden tests are
   graded by the instructor).

Then ``audit`` searches every file of the bundle, as bytes, for the name of
any hidden test and any line of a reference solution's bodies, and for
compiled files; ``build`` refuses to finish a bundle that fails it.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import sys
from pathlib import Path

from grader import course

MARKER = "release.json"
CHECK_NOTE = ("Public tests only: this kit checks the public tests; the hidden tests are graded by your "
              "instructor, so your final score can be lower.")
# Instructor libraries stay out of a student bundle: they read the hidden graders, and their
# commands (cli_instructor, cli_nbgrader: thin, shipped because cli.py registers them) import
# them only when run, which a bundle refuses anyway.
INSTRUCTOR_ONLY = ("batch.py", "gradescope.py", "nbgrader_export.py")
QUIZ_SUFFIXES = (".toml", ".md")


class ReleaseError(RuntimeError):
    """The bundle could not be made safely (a leak found by the audit, a grader that does not parse)."""


# -- the marker and what the CLI asks of it ------------------------------------------

def bundle_info(root: Path | None = None) -> dict | None:
    """The marker's content when this kit is a student bundle, else None."""
    path = (root or course.kit_root()) / "grader" / MARKER
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_note() -> str | None:
    """The line ``seqlings check`` prints in a student bundle, else None."""
    info = bundle_info()
    return None if info is None else info.get("check_note", CHECK_NOTE)


def pristine_stub(topic: course.Topic) -> str | None:
    """The pristine stub of ``topic``: made from the reference, or the copy a bundle ships."""
    from grader import stubs

    if topic.reference.exists():
        return stubs.make_stub(topic, topic.reference.read_text())
    shipped = course.kit_root() / "grader" / "pristine" / f"{topic.name}.py"
    return shipped.read_text() if shipped.exists() else None


def is_pristine(topic: course.Topic, text: str) -> bool:
    """Is ``text`` the untouched stub of ``topic``? Cached by digest in ``.seqlings/pristine.json``.

    Making a stub parses the reference; ``seqlings list`` asks for every topic, so the digest of
    each stub is kept, keyed by the digest of what it is made from (reference, topics.toml, stubs.py).
    """
    import hashlib

    def digest(data: str) -> str:
        return hashlib.sha256(data.encode()).hexdigest()

    source = topic.reference if topic.reference.exists() else course.kit_root() / "grader" / "pristine" / f"{topic.name}.py"
    try:
        key = digest(source.read_text() + course.METADATA.read_text()
                     + Path(__file__).with_name("stubs.py").read_text())  # what a stub is made from
    except OSError:
        return False
    cache_file = course.workspace() / ".seqlings" / "pristine.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(topic.name)
    if not (isinstance(entry, list) and len(entry) == 2 and entry[0] == key):
        stub = pristine_stub(topic)
        if stub is None:
            return False
        cache[topic.name] = entry = [key, digest(stub)]
        try:  # a cache: losing it costs time only
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(cache_file)
        except OSError:
            pass
    return digest(text) == entry[1]


# -- public tests by AST -------------------------------------------------------------

def _is_test(node: ast.AST) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")


def _is_test_class(node: ast.AST) -> bool:
    return isinstance(node, ast.ClassDef) and node.name.startswith("Test")


def _marked(node: ast.AST, mark: str) -> bool:
    for dec in getattr(node, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        if ast.unparse(target).endswith(f"mark.{mark}"):
            return True
    return False


def _is_fixture(node: ast.AST) -> bool:
    return any(ast.unparse(d.func if isinstance(d, ast.Call) else d).endswith("fixture")
               for d in getattr(node, "decorator_list", []))


def split_tests(source: str) -> tuple[set[str], set[str]]:
    """(public, hidden) test function names of a grader file (methods of Test* classes included)."""
    public, hidden = set(), set()
    for node in ast.parse(source).body:
        if _is_test(node):
            (public if _marked(node, "public") else hidden).add(node.name)
        elif _is_test_class(node):
            for item in node.body:
                if _is_test(item):
                    is_public = _marked(node, "public") or _marked(item, "public")
                    (public if is_public else hidden).add(item.name)
    return public, hidden


def _defines(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
    return names


def _uses(node: ast.AST) -> set[str]:
    names = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    funcs = [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else \
        [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] \
        if isinstance(node, ast.ClassDef) else []
    for fn in funcs:
        if _is_test(fn) or _is_fixture(fn):
            # Fixtures arrive by parameter name, and by name in usefixtures(...).
            names |= {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("usefixtures"):
                names |= {a.value for a in dec.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return names


def _always_kept(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if node.name.startswith("pytest_"):
            return True
        return any(isinstance(d, ast.Call) and ast.unparse(d.func).endswith("fixture")
                   and any(k.arg == "autouse" and ast.unparse(k.value) == "True" for k in d.keywords)
                   for d in node.decorator_list)
    return "pytestmark" in _defines(node)


def _public_class(node: ast.ClassDef, lines: list[str]) -> str | None:
    """A Test* class cut down to its public test methods (and its non-test members), or None."""
    if _marked(node, "public"):
        return None  # kept whole by the caller
    dropped = [item for item in node.body if _is_test(item) and not _marked(item, "public")]
    if len(dropped) == sum(_is_test(item) for item in node.body):
        return ""
    skip = set()
    for item in dropped:
        start = min([d.lineno for d in item.decorator_list] + [item.lineno])
        skip.update(range(start, item.end_lineno + 1))
    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
    return "".join(line for n, line in enumerate(lines[start - 1:node.end_lineno], start) if n not in skip)


def public_tests_source(source: str, topic: str) -> str:
    """The grader ``source`` with only its public tests and what they need, as Python source."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    body = [n for n in tree.body
            if not (n is tree.body[0] and isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    roots, helpers = [], []
    for node in body:
        if _is_test(node):
            if _marked(node, "public"):
                roots.append(node)
        elif _is_test_class(node):
            if _marked(node, "public") or _public_class(node, lines):
                roots.append(node)
        else:
            helpers.append(node)
    defined_by: dict[str, list[ast.stmt]] = {}
    for node in helpers:
        for name in _defines(node):
            defined_by.setdefault(name, []).append(node)
    kept: set[int] = set()
    queue = list(roots) + [n for n in helpers if _always_kept(n) or not _defines(n)]
    while queue:
        node = queue.pop()
        if id(node) in kept:
            continue
        kept.add(id(node))
        for name in _uses(node):
            queue.extend(n for n in defined_by.get(name, []) if id(n) not in kept)

    chunks = []
    for node in body:
        if id(node) not in kept:
            continue
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1  # the comment block right above belongs to the statement
        if _is_test_class(node) and not _marked(node, "public"):
            text = _public_class(node, lines)
        else:
            text = "".join(lines[start - 1:node.end_lineno])
        chunks.append((node, text.rstrip() + "\n"))
    doc = (f'"""Public tests of `{topic}`, as shipped to students.\n\n'
           f"The instructor's grader has more tests, hidden; `seqlings check {topic}` runs these.\n"
           '"""\n')
    out = [doc]
    previous = None
    for node, text in chunks:
        compact = previous is not None and isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)) \
            and isinstance(previous, (ast.Import, ast.ImportFrom, ast.Assign))
        out.append(("" if compact else "\n\n") + text)
        previous = node
    result = "".join(out)
    compile(result, f"test_{topic}.py", "exec")  # a filter that broke the file fails here, not in class
    return result


# -- the audit -------------------------------------------------------------------------

def reference_lines(topic: course.Topic, min_len: int = 20) -> set[str]:
    """The lines (stripped, ``min_len`` characters or more) of the reference's function bodies."""
    source = topic.reference.read_text()
    lines = source.splitlines()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring ships in the stub
        for stmt in body:
            for line in lines[stmt.lineno - 1:stmt.end_lineno]:
                text = line.strip()
                if len(text) >= min_len:
                    found.add(text)
    return found


def audit(root: Path, topics: list[course.Topic] | None = None, hidden_ok: bool = False) -> list[str]:
    """Problems of a bundle at ``root``: hidden test names (unless ``hidden_ok``), reference code, compiled files."""
    from grader import stubs

    topics = list(course.topics()) if topics is None else topics
    hidden: set[str] = set()
    leaks: dict[str, str] = {}
    # Not a leak: code a stub hands out (signatures, docstrings, a topic's given helpers), code the
    # graders share with a reference (an expected value computed by the same loop, a message that
    # spells out the fix), and hints or quiz answers that spell out a line on purpose.
    taught = "\n".join(
        [stubs.make_stub(t, t.reference.read_text()) for t in topics if t.reference.exists()]
        + [t.grader.read_text() for t in topics if t.grader.exists()]
        + [course.METADATA.read_text()]
        + [p.read_text() for p in sorted((course.kit_root() / "quizzes").glob("*.toml"))])
    for t in topics:
        if t.grader.exists() and not hidden_ok:
            hidden |= split_tests(t.grader.read_text())[1]
        if t.reference.exists():
            leaks.update({line: t.name for line in reference_lines(t) if line not in taught})
    patterns = [re.compile(rb"(?<![A-Za-z0-9_])(?:test_)?" + re.escape(name.removeprefix("test_").encode())
                           + rb"(?![A-Za-z0-9_])") for name in sorted(hidden)]
    problems = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if path.suffix in (".pyc", ".pyo") or "__pycache__" in rel.parts:
            problems.append(f"{rel}: compiled file in the bundle")
        if "reference" in rel.parts:
            problems.append(f"{rel}: a reference folder in the bundle")
        data = path.read_bytes()
        for name, pattern in zip(sorted(hidden), patterns):
            if pattern.search(data):
                problems.append(f"{rel}: names the hidden test {name}")
        for line, name in leaks.items():
            if line.encode() in data:
                problems.append(f"{rel}: holds a line of reference/{name}.py: {line[:60]!r}")
    return problems


# -- building --------------------------------------------------------------------------

def topics_toml(chosen: list[course.Topic]) -> str:
    """``topics.toml`` with only the chosen topics' tables (comments and order kept)."""
    text = course.METADATA.read_text()
    parts = re.split(r"(?m)^(?=\[\[topic\]\]\s*$)", text)
    header, tables = parts[0], parts[1:]
    names = {t.name for t in chosen}
    kept = [tbl for tbl in tables if re.search(r'(?m)^name\s*=\s*"([^"]+)"', tbl).group(1) in names]
    return header + "".join(kept)


def _copy_package(dest: Path, chosen: list[course.Topic], skip: tuple[str, ...] = ()) -> None:
    src = course.kit_root() / "grader"
    (dest / "grader" / "checks").mkdir(parents=True)
    for path in sorted(src.glob("*.py")):
        if path.name not in skip:
            shutil.copyfile(path, dest / "grader" / path.name)
    (dest / "grader" / "topics.toml").write_text(topics_toml(chosen))
    shutil.copyfile(src / "checks" / "__init__.py", dest / "grader" / "checks" / "__init__.py")


def _pyproject(package_data: list[str]) -> str:
    text = (course.kit_root() / "pyproject.toml").read_text()
    old = 'grader = ["topics.toml"]'
    if old not in text:
        raise ReleaseError(f"pyproject.toml has no line {old!r} to extend with the bundle's package data")
    return text.replace(old, "grader = [" + ", ".join(f'"{p}"' for p in ["topics.toml", *package_data]) + "]")


def _quizzes(dest: Path, chosen: list[course.Topic]) -> None:
    src = course.kit_root() / "quizzes"
    if not src.is_dir():
        return
    other_topics = set(course.names()) - {t.name for t in chosen}
    (dest / "quizzes").mkdir()
    for path in sorted(src.iterdir()):
        if path.is_file() and path.suffix in QUIZ_SUFFIXES and path.stem not in other_topics:
            shutil.copyfile(path, dest / "quizzes" / path.name)


README = """\
# seqlings: {title}

Drills for sequence models. Each topic is one mechanism you implement by hand
in `exercises/TOPIC.py`; `seqlings check` runs its public tests against
PyTorch's own implementation and tells you what differs, where, and the likely
cause.

```bash
python -m pip install -e .
seqlings list
```

## Working on a topic

```console
$ seqlings show {first}            # the statement, the file to edit, the notes to read
$ $EDITOR exercises/{first}.py     # fill in the functions
$ seqlings check {first}           # run the public tests
$ seqlings hint {first}            # stuck? hints get more specific each time
$ seqlings reset {first}           # start over; your version is kept in .seqlings/backups/
$ seqlings quiz {first}            # concept questions, spaced repetition
```

**Public tests only.** `seqlings check` runs the public tests of each topic.
Your instructor grades your files with more tests, hidden ones, so full marks
here do not guarantee full marks there: test the edge cases the docstrings
describe yourself. Exit codes: 0 every public test passed, 1 some failed,
2 bad usage.

Hand in the files of `exercises/` as your instructor asks (one `TOPIC.py` per
topic).

## Topics

| topic | drill |
| --- | --- |
{rows}
"""


def _readme(chosen: list[course.Topic]) -> str:
    rows = "\n".join(f"| `{t.name}` | {t.title} |" for t in chosen)
    title = "student kit" if len(chosen) != 1 else chosen[0].title
    return README.format(title=title, first=chosen[0].name, rows=rows)


def build(out: Path, chosen: list[course.Topic], force: bool = False) -> list[str]:
    """Write the student bundle for ``chosen`` into ``out``; return the bundle's files, relative."""
    from grader import stubs

    out = Path(out)
    _prepare(out, force, marker=Path("grader") / MARKER)
    missing = [t.name for t in chosen if not (t.reference.exists() and t.grader.exists())]
    if missing:
        raise ReleaseError(f"no reference or no grader for {', '.join(missing)}: finish the topic or leave it "
                           "out with --topics")
    try:
        _copy_package(out, chosen, skip=INSTRUCTOR_ONLY)
        (out / "grader" / "pristine").mkdir()
        (out / "exercises").mkdir()
        for t in chosen:
            public = public_tests_source(t.grader.read_text(), t.name)
            (out / "grader" / "checks" / f"test_{t.name}.py").write_text(public)
            stub = stubs.make_stub(t, t.reference.read_text())
            (out / "exercises" / f"{t.name}.py").write_text(stub)
            (out / "grader" / "pristine" / f"{t.name}.py").write_text(stub)
        _quizzes(out, chosen)
        (out / "README.md").write_text(_readme(chosen))
        (out / "pyproject.toml").write_text(_pyproject([MARKER, "pristine/*.py"]))
        (out / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.seqlings/\n")
        marker = {"kind": "student", "topics": [t.name for t in chosen], "check_note": CHECK_NOTE,
                  "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
        (out / "grader" / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        problems = audit(out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    if problems:
        shutil.rmtree(out, ignore_errors=True)
        raise ReleaseError("the bundle would leak: " + "; ".join(problems[:5])
                           + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def _prepare(out: Path, force: bool, marker: Path) -> None:
    """An empty ``out``; with ``force``, an earlier bundle (it holds ``marker``) is replaced, nothing else."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise ReleaseError(f"{out} exists and is not empty; pick a new folder, or pass --force to "
                               "replace an earlier bundle")
        if not (out / marker).is_file():
            raise ReleaseError(f"{out} is not an earlier bundle (no {marker}); refusing to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
