"""The course: topics in order (from ``topics.toml``) and where their files live.

No torch here: ``seqlings --help``, ``list`` and ``show`` use only this module.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

METADATA = Path(__file__).with_name("topics.toml")


class UnknownTopic(ValueError):
    """A topic name that is not in the course."""


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    summary: str
    functions: tuple[str, ...]
    forbidden: tuple[str, ...]
    kernels: tuple[str, ...]
    notes: tuple[str, ...]
    hints: tuple[str, ...]
    points: float
    todo: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def exercise(self) -> Path:
        return workspace() / "exercises" / f"{self.name}.py"

    @property
    def reference(self) -> Path:
        return kit_root() / "reference" / f"{self.name}.py"

    @property
    def grader(self) -> Path:
        return kit_root() / "grader" / "checks" / f"test_{self.name}.py"


def kit_root() -> Path:
    """The folder holding exercises/, reference/, grader/ and quizzes/."""
    return Path(__file__).resolve().parent.parent


def workspace() -> Path:
    """Where the learner's exercises and progress live (``SEQLINGS_HOME`` overrides)."""
    return Path(os.environ.get("SEQLINGS_HOME") or kit_root()).resolve()


@lru_cache(maxsize=None)
def topics() -> tuple[Topic, ...]:
    data = tomllib.loads(METADATA.read_text())
    return tuple(
        Topic(
            name=t["name"], title=t["title"], summary=t["summary"].strip(),
            functions=tuple(t["functions"]), forbidden=tuple(t.get("forbidden", ())),
            kernels=tuple(t.get("kernels", ())),
            notes=tuple(t["notes"]), hints=tuple(t["hints"]), points=float(t["points"]),
            todo=dict(t.get("todo", {})),
        )
        for t in data["topic"]
    )


def names() -> list[str]:
    return [t.name for t in topics()]


def topic(name: str) -> Topic:
    for t in topics():
        if t.name == name:
            return t
    close = difflib.get_close_matches(name, names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownTopic(f"unknown topic {name!r}.{hint} Topics: {', '.join(names())}")


def select(requested: tuple[str, ...] | list[str]) -> list[Topic]:
    """Topics named on a command line; 'all' (or nothing) means every topic, in course order."""
    if not requested or "all" in requested:
        return list(topics())
    seen, chosen = set(), []
    for name in requested:
        t = topic(name)
        if t.name not in seen:
            seen.add(t.name)
            chosen.append(t)
    return chosen
