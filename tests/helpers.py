"""Builders shared by the kit's own tests."""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from grader import course, engine

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Mutant:
    """A realistic wrong solution: the reference with one mistake.

    ``replace`` lists (old, new) edits applied to the reference source; each
    ``old`` must occur exactly once, so a reference edit that breaks a mutant
    fails loudly instead of silently testing nothing. ``expect`` is a piece
    of the message a learner must see on some failing test.
    """

    name: str
    replace: tuple[tuple[str, str], ...]
    expect: str | None = None
    why: str = ""

    def source(self, reference: str) -> str:
        for old, new in self.replace:
            count = reference.count(old)
            assert count == 1, f"mutant {self.name}: {old!r} occurs {count} times in the reference, not once"
            reference = reference.replace(old, new)
        return reference


@dataclass(frozen=True)
class Wrong:
    """A whole-file wrong solution in tests/corpus/TOPIC/wrong_*.py; its docstring holds `Expect: ...`."""

    path: Path
    expect: str | None = field(default=None)

    @property
    def name(self) -> str:
        return self.path.stem


def mutants(topic: str) -> list[Mutant]:
    path = CORPUS / topic / "mutants.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"corpus_{topic}_mutants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.MUTANTS)


def wrong_files(topic: str) -> list[Wrong]:
    out = []
    for path in sorted((CORPUS / topic).glob("wrong_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        expect = next((line.split(":", 1)[1].strip() for line in doc.splitlines()
                       if line.startswith("Expect:")), None)
        out.append(Wrong(path, expect))
    return out


def alternatives(topic: str) -> list[Path]:
    return sorted((CORPUS / topic).glob("alt_*.py"))


def grade(topic: str, impl, **kwargs) -> dict:
    kwargs.setdefault("device", "cpu")
    return engine.grade(topic, impl, **kwargs)


def failures(report: dict) -> list[dict]:
    return [t for t in report["tests"] if t["outcome"] != "passed"]


def summary(report: dict) -> str:
    return "\n".join(f"{t['id']}: {t['outcome']}: {t['message']}" for t in failures(report))


def topic_names() -> list[str]:
    return course.names()
