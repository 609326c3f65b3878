"""The learner's progress, in SQLite: every check's score, and hints seen.

One file per workspace (``.seqlings/progress.db``, or ``SEQLINGS_DB``). Each
write is its own transaction in WAL mode, so a crash or Ctrl-C loses at most
the write in flight and never corrupts what was saved before.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from grader import course

SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    impl TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    at REAL NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_topic ON checks (topic, impl, at);
CREATE TABLE IF NOT EXISTS hints (
    topic TEXT PRIMARY KEY,
    shown INTEGER NOT NULL
);
"""


def db_path() -> Path:
    return Path(os.environ.get("SEQLINGS_DB") or course.workspace() / ".seqlings" / "progress.db")


@contextmanager
def connect():
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        with conn:  # one transaction: committed on success, rolled back on any error
            yield conn
    finally:
        conn.close()


def record_check(report: dict) -> None:
    with connect() as conn:
        conn.execute("INSERT INTO checks (topic, impl, score, max_score, at, report) VALUES (?, ?, ?, ?, ?, ?)",
                     (report["topic"], report["impl"], report["score"], report["max_score"], time.time(),
                      json.dumps(report)))


def last_checks(impl_of: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Latest (score, max_score) per topic, for the file given per topic."""
    if not db_path().exists():
        return {}
    out = {}
    with connect() as conn:
        for topic, impl in impl_of.items():
            row = conn.execute("SELECT score, max_score FROM checks WHERE topic = ? AND impl = ? "
                               "ORDER BY at DESC, id DESC LIMIT 1", (topic, impl)).fetchone()
            if row:
                out[topic] = (row[0], row[1])
    return out


def next_hint(topic: str, wanted: int | None, available: int) -> int:
    """The 1-based hint number to show: ``wanted`` or one past the last seen (capped)."""
    with connect() as conn:
        row = conn.execute("SELECT shown FROM hints WHERE topic = ?", (topic,)).fetchone()
        shown = row[0] if row else 0
        n = wanted if wanted is not None else min(shown + 1, available)
        conn.execute("INSERT INTO hints (topic, shown) VALUES (?, ?) "
                     "ON CONFLICT(topic) DO UPDATE SET shown = max(shown, excluded.shown)", (topic, n))
    return n
