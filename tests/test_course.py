"""The `dev check` guard: metadata, stubs, references and graders match one to one."""

from __future__ import annotations

import ast
import re

import pytest

from grader import course, stubs

ROOT = course.kit_root()
TOPICS = course.names()


def test_every_topic_has_a_reference_a_stub_and_a_grader():
    for t in course.topics():
        for label, path in (("reference", t.reference), ("stub", ROOT / "exercises" / f"{t.name}.py"),
                            ("grader", t.grader)):
            assert path.is_file(), f"{t.name}: no {label} at {path}; add it or remove the topic from grader/topics.toml"


def test_no_stray_files_in_exercises_reference_or_graders():
    names = set(TOPICS)
    for folder, prefix in (("exercises", ""), ("reference", ""), ("grader/checks", "test_")):
        for path in (ROOT / folder).glob("*.py"):
            if path.name == "__init__.py":
                continue
            stem = re.fullmatch(re.escape(prefix) + r"(\w+)\.py", path.name)
            assert stem and stem.group(1) in names, (
                f"{path} belongs to no topic in grader/topics.toml: add the topic there or delete the file")


@pytest.mark.parametrize("topic", TOPICS)
def test_stub_is_generated_from_the_reference(topic):
    t = course.topic(topic)
    stub = (ROOT / "exercises" / f"{topic}.py").read_text()
    assert stub == stubs.make_stub(t, t.reference.read_text()), (
        f"exercises/{topic}.py is out of date with reference/{topic}.py: run `python -m grader.stubs`")


@pytest.mark.parametrize("topic", TOPICS)
def test_stub_and_reference_define_exactly_the_contract_functions(topic):
    t = course.topic(topic)
    for path in (t.reference, ROOT / "exercises" / f"{topic}.py"):
        tree = ast.parse(path.read_text())
        public = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
        assert public == list(t.functions), f"{path}: defines {public}, topics.toml lists {list(t.functions)}"
        assert set(t.todo) <= set(t.functions) | {"_given"}, f"{topic}: a todo entry names no function"


@pytest.mark.parametrize("topic", TOPICS)
def test_every_stub_body_raises_not_implemented(topic):
    tree = ast.parse((ROOT / "exercises" / f"{topic}.py").read_text())
    given = set(course.topic(topic).todo.get("_given", []))
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in given):
        assert isinstance(fn.body[-1], ast.Raise), f"exercises/{topic}.py: {fn.name} must end in raise NotImplementedError"


def _grader_points(topic: str) -> tuple[float, list[str]]:
    """Sum the points markers over the grader's collected cases, and list tests without one."""
    import pytest as _pytest

    class Collect:
        def __init__(self):
            self.total, self.missing = 0.0, []

        def pytest_collection_modifyitems(self, items):
            for item in items:
                marker = item.get_closest_marker("points")
                if marker is None:
                    self.missing.append(item.name)
                else:
                    self.total += float(marker.args[0])

    c = Collect()
    t = course.topic(topic)
    _pytest.main([str(t.grader), "--collect-only", "-p", "grader.plugin", "-p", "no:terminal",
                  "--import-mode=importlib", "-c", "/dev/null", "--rootdir", str(t.grader.parent)], plugins=[c])
    return c.total, c.missing


@pytest.mark.parametrize("topic", TOPICS)
def test_grader_points_add_up_to_the_metadata(topic):
    total, missing = _grader_points(topic)
    assert not missing, f"{topic}: tests without @pytest.mark.points: {missing}"
    assert total == course.topic(topic).points, (
        f"{topic}: the grader's tests add up to {total:g} points, grader/topics.toml says "
        f"{course.topic(topic).points:g}; make them agree")


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_has_hints_notes_and_public_tests(topic):
    t = course.topic(topic)
    assert len(t.hints) >= 3 and t.notes and t.summary
    assert "@pytest.mark.public" in t.grader.read_text(), f"{topic}: mark a few tests @pytest.mark.public"


@pytest.mark.parametrize("topic", TOPICS)
def test_notes_sections_point_at_real_headings(topic):
    from pathlib import Path

    notes = Path("/work/shared/notes")
    if not notes.is_dir():
        pytest.skip("the course notes are not on this machine")
    for ref in course.topic(topic).notes:
        number = ref.split()[0]
        files = list(notes.glob(f"{number}_*.txt"))
        assert files, f"{topic}: notes reference {ref!r} names no notes file {number}_*.txt"
