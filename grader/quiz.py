"""Concept quizzes: question banks, selection, grading and spaced repetition.

A bank is ``quizzes/<bank>.toml`` (format: one ``[[question]]`` table per
question, see quizzes/README.md). ``select`` picks and orders questions (a seed
fixes the order and each question's choice shuffle), ``grade`` marks one
answer, and ``record`` stores it together with the question's review card,
scheduled by FSRS (the ``fsrs`` package), in the progress database.

No torch here, nor anywhere on the ``seqlings quiz`` path: the quiz starts
instantly. Each answer is its own transaction, so a crash or Ctrl-C mid-quiz
loses at most the answer in flight.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
import re
import sqlite3
import sys
import unicodedata
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from grader import course, progress

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TYPES = ("single", "multi", "numeric", "short")
LETTERS = "abcdef"
SOURCES_FILE = "sources.toml"
KEYS = {"id", "type", "prompt", "choices", "answer", "tolerance", "explanation", "source", "errata", "check"}
ERRATA = range(1, 11)


class QuizError(ValueError):
    """Bad quiz input (a malformed bank or answers file, an unknown topic or id): one line for the learner."""


@dataclass(frozen=True)
class Question:
    id: str
    bank: str
    type: str
    prompt: str
    answer: str | tuple[str, ...] | float
    explanation: str
    source: str
    choices: tuple[str, ...] = ()
    tolerance: float | None = None
    errata: int | None = None
    check: str | None = None


@dataclass(frozen=True)
class Bank:
    name: str
    title: str
    questions: tuple[Question, ...]
    path: Path


@dataclass(frozen=True)
class Asked:
    """A question as shown: its choices in display order (letter a is ``choices[0]``)."""

    question: Question
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    asked: Asked
    given: object  # the answer as the learner gave it
    correct: bool


# --- banks --------------------------------------------------------------------------------------

def quizzes_dir() -> Path:
    """Where the banks live: ``quizzes/`` in the kit (``SEQLINGS_QUIZZES`` overrides)."""
    return Path(os.environ.get("SEQLINGS_QUIZZES") or course.kit_root() / "quizzes")


def bank_problems(data: dict, name: str) -> list[str]:
    """Everything wrong with one bank's parsed TOML, as messages that say what to fix."""
    out = []
    if data.get("bank") != name:
        out.append(f"bank = {data.get('bank')!r} must equal the file name {name!r}")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        out.append("needs a title = \"...\"")
    questions = data.get("question")
    if not isinstance(questions, list) or not questions:
        return out + ["needs at least one [[question]]"]
    id_re = re.compile(rf"^{re.escape(name)}-[a-z0-9]+(-[a-z0-9]+)*$")
    seen = set()
    for i, q in enumerate(questions, 1):
        qid = q.get("id")
        where = f"question {qid!r}" if isinstance(qid, str) else f"question #{i}"
        out += [f"{where}: {p}" for p in _question_problems(q, id_re, name)]
        if qid in seen:
            out.append(f"{where}: the id is used twice")
        seen.add(qid)
    return out


def _question_problems(q: dict, id_re: re.Pattern, bank: str) -> Iterator[str]:
    unknown = set(q) - KEYS
    if unknown:
        yield f"unknown keys {sorted(unknown)} (allowed: {sorted(KEYS)})"
    if not isinstance(q.get("id"), str) or not id_re.match(q["id"]):
        yield f"id must start with '{bank}-' and use only a-z, 0-9 and single dashes"
    kind = q.get("type")
    if kind not in TYPES:
        yield f"type {kind!r} must be one of {', '.join(TYPES)}"
        return
    for key in ("prompt", "explanation"):
        if not isinstance(q.get(key), str) or not q[key].strip():
            yield f"needs a non-empty {key}"
    source = q.get("source")
    if not isinstance(source, str) or not re.match(r"^\d{3}: \S", source):
        yield "source must read '<note number>: <section heading>', e.g. '003: Attention Mechanism'"
    if "errata" in q and (type(q["errata"]) is not int or q["errata"] not in ERRATA):
        yield "errata must be an errata item number, 1 to 10"
    if "check" in q and (not isinstance(q["check"], str) or kind not in ("numeric", "short")):
        yield "check is a Python expression (a string), for numeric and short questions only"
    answer, choices = q.get("answer"), q.get("choices")
    if kind in ("single", "multi"):
        if not (isinstance(choices, list) and 3 <= len(choices) <= 6
                and all(isinstance(c, str) and c.strip() for c in choices)):
            yield "choices must be a list of 3 to 6 non-empty strings"
            return
        if len({_norm_text(c) for c in choices}) != len(choices):
            yield "two choices read the same"
        if kind == "single" and answer not in choices:
            yield "answer must be the exact text of one of the choices"
        if kind == "multi" and not (isinstance(answer, list) and answer and set(answer) <= set(choices)
                                    and len(set(answer)) == len(answer)):
            yield "answer must be a non-empty list of distinct choice texts"
        if "tolerance" in q:
            yield "tolerance is for numeric questions only"
    else:
        if "choices" in q:
            yield "choices are for single and multi questions only"
        if kind == "numeric":
            if not _is_number(answer):
                yield "answer must be a number"
            tol = q.get("tolerance")
            if not _is_number(tol) or tol < 0:
                yield "needs tolerance = a number >= 0 (absolute)"
        if kind == "short":
            if not (isinstance(answer, list) and answer and all(isinstance(a, str) and a.strip() for a in answer)):
                yield "answer must be a non-empty list of accepted forms (strings)"
            if "tolerance" in q:
                yield "tolerance is for numeric questions only"


def _is_number(x: object) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def load_bank(path: Path) -> Bank:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QuizError(f"quiz bank {path.name} is not valid TOML: {exc}") from None
    problems = bank_problems(data, path.stem)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise QuizError(f"quiz bank {path.name}: {problems[0]}{more}")
    questions = []
    for q in data["question"]:
        answer = q["answer"]
        if q["type"] == "numeric":
            answer = float(answer)
        elif isinstance(answer, list):
            answer = tuple(answer)
        questions.append(Question(
            id=q["id"], bank=path.stem, type=q["type"], prompt=q["prompt"].strip(), answer=answer,
            explanation=q["explanation"].strip(), source=q["source"], choices=tuple(q.get("choices", ())),
            tolerance=float(q["tolerance"]) if "tolerance" in q else None, errata=q.get("errata"),
            check=q.get("check")))
    return Bank(path.stem, data["title"], tuple(questions), path)


def bank_files(folder: Path | None = None) -> list[Path]:
    folder = folder or quizzes_dir()
    return sorted(p for p in folder.glob("*.toml") if p.name != SOURCES_FILE)


def load_banks(folder: Path | None = None, only: Iterable[str] | None = None) -> dict[str, Bank]:
    """Every bank (or the ones named in ``only``), exercise topics first in course order, then the
    other subjects by name."""
    files = bank_files(folder)
    if only is not None:
        files = [p for p in files if p.stem in set(only)]
    banks = [load_bank(p) for p in files]
    owner: dict[str, str] = {}
    for b in banks:
        for q in b.questions:
            if q.id in owner:
                raise QuizError(f"question id {q.id!r} is in both {owner[q.id]}.toml and {b.name}.toml")
            owner[q.id] = b.name
    order = {name: i for i, name in enumerate(course.names())}
    banks.sort(key=lambda b: (order.get(b.name, len(order)), b.name))
    return {b.name: b for b in banks}


def needed_banks(requested: Iterable[str], ids: Iterable[str] = ()) -> list[str] | None:
    """The banks a quiz needs, when they can be named without reading every bank; None: read them all.

    A question id starts with its bank's name (``sdpa-why-sqrt-dk``), so an answers file names its banks.
    """
    names = {p.stem for p in bank_files()}
    wanted = set(requested) - {"all"} if requested and "all" not in requested else {i.split("-", 1)[0] for i in ids}
    return sorted(wanted) if wanted and wanted <= names else None


def pick_banks(banks: dict[str, Bank], requested: Iterable[str]) -> list[Bank]:
    """Banks named on the command line; nothing or 'all' means every bank."""
    requested = list(requested)
    if not requested or "all" in requested:
        return list(banks.values())
    chosen = []
    for name in requested:
        if name not in banks:
            close = difflib.get_close_matches(name, list(banks), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            yet = " (no quiz bank for it yet)" if name in course.names() else ""
            raise QuizError(f"unknown quiz topic {name!r}{yet}.{hint} Topics: {', '.join(banks) or 'none'}")
        if banks[name] not in chosen:
            chosen.append(banks[name])
    return chosen


# --- selection ----------------------------------------------------------------------------------

def shuffle_choices(question: Question, seed: int | None) -> Asked:
    """The question with its choices in display order: bank order without a seed, else shuffled.

    The shuffle depends only on the seed and the question's id, so a question
    shows the same letters for a seed whatever else is asked with it.
    """
    choices = list(question.choices)
    if seed is not None:
        random.Random(f"{seed}:{question.id}").shuffle(choices)
    return Asked(question, tuple(choices))


def select(banks: Iterable[Bank], *, n: int | None = None, seed: int | None = None, due_only: bool = False,
           ids: Iterable[str] | None = None, now: datetime | None = None) -> list[Asked]:
    """The questions to ask, in order.

    ``ids`` asks exactly those questions (in that order unless a seed shuffles
    them). ``due_only`` keeps the cards whose review is due, most overdue first
    when ``n`` cuts the list. Without a seed the order is the banks' own.
    """
    pool = {q.id: q for b in banks for q in b.questions}
    if ids is not None:
        ids = list(ids)
        unknown = [i for i in ids if i not in pool]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(pool), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise QuizError(f"unknown question id {unknown[0]!r}"
                            f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}.{hint}")
        questions = [pool[i] for i in dict.fromkeys(ids)]
    else:
        questions = list(pool.values())
    if due_only:
        due = due_cards(now)
        questions = sorted((q for q in questions if q.id in due), key=lambda q: due[q.id])
        if n is not None:
            questions = questions[:n]
    if seed is not None:
        random.Random(seed).shuffle(questions)
    if n is not None:
        questions = questions[:n]
    return [shuffle_choices(q, seed) for q in questions]


# --- grading ------------------------------------------------------------------------------------

class InvalidAnswer(ValueError):
    """An answer that cannot be read for this question type (a learner is asked again)."""


def _norm_text(s: str) -> str:
    return " ".join(str(s).split()).casefold()


def _norm_short(s: str) -> str:
    return "".join(str(s).split()).casefold()


_LETTER = re.compile(r"^\(?([a-f])[).]?$")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _choice(asked: Asked, token: object) -> str:
    """A letter (as displayed) or a choice's text -> the choice's text."""
    text = str(token).strip()
    m = _LETTER.match(text.casefold())
    if m and LETTERS.index(m.group(1)) < len(asked.choices):
        return asked.choices[LETTERS.index(m.group(1))]
    for c in asked.choices:
        if _norm_text(c) == _norm_text(text):
            return c
    raise InvalidAnswer(f"answer with a letter a-{LETTERS[len(asked.choices) - 1]} or a choice's text")


def parse_number(raw: object) -> float:
    """A plain number or a simple fraction such as 3/4 or -1/2 (no expressions)."""
    if type(raw) in (int, float):
        return float(raw)
    text = "".join(str(raw).split())
    parts = text.split("/")
    if len(parts) <= 2 and all(_NUMBER.match(p) for p in parts):
        if len(parts) == 1:
            return float(parts[0])
        if float(parts[1]) != 0:
            return float(parts[0]) / float(parts[1])
    raise InvalidAnswer("answer with a number such as 0.25, 1e-3 or 3/4")


def parse(asked: Asked, raw: object) -> object:
    """The learner's answer in canonical form: a choice text, a frozenset of them, a float or a string."""
    kind = asked.question.type
    if kind == "single":
        if isinstance(raw, list):
            if len(raw) != 1:
                raise InvalidAnswer("give one choice")
            raw = raw[0]
        return _choice(asked, raw)
    if kind == "multi":
        tokens = raw if isinstance(raw, list) else _split_multi(asked, str(raw))
        picked = frozenset(_choice(asked, t) for t in tokens if str(t).strip())
        if not picked:
            raise InvalidAnswer("give one or more letters, e.g. a,c")
        return picked
    if kind == "numeric":
        return parse_number(raw)
    text = str(raw).strip()
    if not text:
        raise InvalidAnswer("type an answer")
    return text


def _split_multi(asked: Asked, raw: str) -> list[str]:
    # "a,c", "a c", "ac" all mean letters; otherwise comma-separated choice texts.
    compact = raw.replace(",", " ").split()
    if all(_LETTER.match(t.casefold()) for t in compact):
        return compact
    if len(compact) == 1 and re.fullmatch(r"[a-f]{2,6}", compact[0].casefold()):
        return list(compact[0])
    return raw.split(",")


def grade(asked: Asked, raw: object) -> bool:
    """Whether ``raw`` answers the question right; an unreadable answer is a wrong one."""
    q = asked.question
    try:
        given = parse(asked, raw)
    except InvalidAnswer:
        return False
    if q.type == "single":
        return given == q.answer
    if q.type == "multi":
        return given == frozenset(q.answer)
    if q.type == "numeric":
        return abs(given - q.answer) <= q.tolerance + 1e-12 * max(1.0, abs(q.answer))
    return _norm_short(given) in {_norm_short(a) for a in q.answer}


def answer_text(asked: Asked) -> str:
    """The right answer as the learner saw the choices, e.g. 'b) ...'."""
    q = asked.question
    if q.type == "single":
        return _lettered(asked, q.answer)
    if q.type == "multi":
        return "; ".join(_lettered(asked, c) for c in asked.choices if c in q.answer)
    if q.type == "numeric":
        return f"{q.answer:g}" + (f" (± {q.tolerance:g})" if q.tolerance else "")
    return q.answer[0]


def _lettered(asked: Asked, choice: str) -> str:
    return f"{LETTERS[asked.choices.index(choice)]}) {choice}"


# --- answers files ------------------------------------------------------------------------------

def read_answers(path: Path) -> dict[str, object]:
    """An answers file: TOML or JSON mapping question id -> answer (string, number or list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QuizError(f"cannot read answers file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise QuizError(f"answers file {path} is not UTF-8 text") from None
    if path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml" and text.lstrip().startswith("{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QuizError(f"answers file {path} is not valid JSON: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise QuizError(f"answers file {path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise QuizError(f"answers file {path} must map question ids to answers, e.g. sdpa-why-sqrt-dk = \"b\"")
    for key, value in data.items():
        ok = (type(value) in (str, int, float) or
              (isinstance(value, list) and all(type(v) in (str, int, float) for v in value)))
        if not ok:
            raise QuizError(f"answers file {path}: the answer to {key!r} must be a string, a number "
                            f"or a list of them, not {type(value).__name__}")
    return data


# --- review state -------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS quiz_cards (
    question TEXT PRIMARY KEY,
    bank TEXT NOT NULL,
    due REAL NOT NULL,
    card TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quiz_cards_due ON quiz_cards (due);
CREATE TABLE IF NOT EXISTS quiz_answers (
    id INTEGER PRIMARY KEY,
    question TEXT NOT NULL,
    bank TEXT NOT NULL,
    given TEXT NOT NULL,
    correct INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS quiz_answers_bank ON quiz_answers (bank);
"""


def now() -> datetime:
    """The scheduler's clock (UTC); tests replace it to travel in time."""
    return datetime.now(timezone.utc)


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """The progress database (``progress.db_path()``) with the quiz tables, in one transaction."""
    path = progress.db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        with conn:  # committed on success, rolled back on any error
            yield conn
    finally:
        conn.close()


def _scheduler():
    from fsrs import Scheduler

    return Scheduler()


def record(result: Result, when: datetime | None = None) -> datetime:
    """Store one answer and reschedule its card, in one transaction; returns when the card is due next."""
    from fsrs import Card, Rating

    q = result.asked.question
    when = when or now()
    with connect() as conn:
        row = conn.execute("SELECT card FROM quiz_cards WHERE question = ?", (q.id,)).fetchone()
        card = Card.from_json(row[0]) if row else Card(card_id=zlib.crc32(q.id.encode()), due=when)
        card, _log = _scheduler().review_card(card, Rating.Good if result.correct else Rating.Again, when)
        conn.execute("INSERT INTO quiz_cards (question, bank, due, card) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT(question) DO UPDATE SET bank = excluded.bank, due = excluded.due, "
                     "card = excluded.card", (q.id, q.bank, card.due.timestamp(), card.to_json()))
        conn.execute("INSERT INTO quiz_answers (question, bank, given, correct, at) VALUES (?, ?, ?, ?, ?)",
                     (q.id, q.bank, json.dumps(result.given), int(result.correct), when.timestamp()))
    return card.due


def due_cards(at: datetime | None = None) -> dict[str, float]:
    """Question id -> due time (epoch seconds) of every card seen before and due by ``at``."""
    if not progress.db_path().exists():
        return {}
    at = at or now()
    with connect() as conn:
        rows = conn.execute("SELECT question, due FROM quiz_cards WHERE due <= ?", (at.timestamp(),))
        return dict(rows.fetchall())


def next_due() -> datetime | None:
    if not progress.db_path().exists():
        return None
    with connect() as conn:
        row = conn.execute("SELECT min(due) FROM quiz_cards").fetchone()
    return datetime.fromtimestamp(row[0], timezone.utc) if row and row[0] is not None else None


@dataclass(frozen=True)
class BankStats:
    answered: int = 0
    correct: int = 0
    seen: int = 0
    due: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def stats(at: datetime | None = None) -> dict[str, BankStats]:
    """Per bank: answers given, right ones, cards seen and cards due now."""
    if not progress.db_path().exists():
        return {}
    at = at or now()
    out: dict[str, dict] = {}
    with connect() as conn:
        for bank, answered, correct in conn.execute(
                "SELECT bank, COUNT(*), SUM(correct) FROM quiz_answers GROUP BY bank"):
            out.setdefault(bank, {}).update(answered=answered, correct=correct or 0)
        for bank, seen, due in conn.execute(
                "SELECT bank, COUNT(*), SUM(due <= ?) FROM quiz_cards GROUP BY bank", (at.timestamp(),)):
            out.setdefault(bank, {}).update(seen=seen, due=due or 0)
    return {bank: BankStats(**v) for bank, v in out.items()}


# --- the notes behind the questions -------------------------------------------------------------

def heading_text(line: str) -> str:
    """A markdown heading line as cited by a question: no #'s, emoji or ** markers, spaces collapsed."""
    text = line.lstrip("#").replace("**", "")
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Cf", "Mn", "Cs"))
    return " ".join(text.split())


def note_headings(text: str) -> tuple[str, list[str]]:
    """A notes file's title (its first heading) and its other section headings, code blocks skipped."""
    headings, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and re.match(r"^#{1,6}\s", line):
            h = heading_text(line)
            if h and not h.startswith("["):  # link-only headings ([Video Link](...)) are not sections
                headings.append(h)
    return (headings[0], headings[1:]) if headings else ("", [])


def load_sources(path: Path | None = None) -> dict[str, dict]:
    """``quizzes/sources.toml``: note number -> {"title": ..., "sections": [...]}."""
    path = path or course.kit_root() / "quizzes" / SOURCES_FILE
    return tomllib.loads(path.read_text(encoding="utf-8"))["notes"]


def source_problem(source: str, sources: dict[str, dict]) -> str | None:
    """Why a question's ``source`` does not point at a real note section, or None when it does."""
    m = re.match(r"^(\d{3}): (.+)$", source)
    if not m:
        return f"source {source!r} must read '<note number>: <section heading>'"
    number, section = m.group(1), m.group(2).strip().casefold()
    if number not in sources:
        return f"source {source!r}: no note {number} (notes: {', '.join(sorted(sources))})"
    title = sources[number]["title"].casefold() + ":"
    if section.startswith(title):  # "003: <title>: <section>" cites the same section
        section = section[len(title):].strip()
    # a heading's trailing ':' or '.' is optional ("Formula" cites "Formula:")
    if not any(section.startswith(h.rstrip(":. ").casefold()) for h in sources[number]["sections"]):
        return f"source {source!r}: no section of note {number} starts that way (see quizzes/{SOURCES_FILE})"
    return None
