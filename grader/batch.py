"""Grade a whole class: find every submission, grade them in parallel, resume after a kill.

Steps, in order (each a function below):

1. ``discover``: one job per (student, topic). A student is a folder of
   ``SUBMISSIONS_DIR`` holding ``TOPIC.py`` or ``TOPIC.ipynb`` files, directly
   or one level down (nbgrader's ``submitted/STUDENT/ASSIGNMENT/TOPIC.ipynb``;
   an nbgrader course folder is entered at its ``submitted/``). A notebook is
   graded as the code of its solution cells (``notebook_source``).
2. ``Journal``: every finished job is one JSON line appended to
   ``OUT.journal.jsonl`` and flushed, so a killed batch loses at most the jobs
   in flight; a rerun skips every job whose file and settings are unchanged
   and renders the outputs from the journal, one row per (student, topic).
3. ``run``: jobs go to warm worker processes (a fork server that imported
   torch and the grader once). Each worker grades with ``engine.grade``, which
   still runs the student's code in a fresh child of its own, so a hang,
   crash, memory bomb or forbidden call costs that submission only.
4. ``write_output`` (csv, json, or a folder of Gradescope ``results.json``)
   and ``summarize`` (score distribution per topic, most failed tests,
   timeouts and forbidden calls).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from grader import course

JOURNAL_SUFFIX = ".journal.jsonl"
FORMATS = ("csv", "json", "gradescope")
CSV_COLUMNS = ("student", "topic", "score", "max_score", "flags", "file", "seed", "detail")
# Folders that are never a student or an assignment.
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git", ".seqlings"}


class BatchError(ValueError):
    """Bad input for a batch (a layout that cannot be read, an ambiguous assignment)."""


# -- 1. discovery --------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One (student, topic) to grade; ``path`` is None when the student has no file for it."""

    student: str
    topic: str
    path: Path | None
    assignment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.student}\t{self.topic}"


def submissions_root(folder: Path) -> Path:
    """The folder whose subfolders are students: an nbgrader course is entered at ``submitted/``."""
    submitted = folder / "submitted"
    return submitted if submitted.is_dir() else folder


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and p.name not in SKIP_DIRS and not p.name.startswith("."))


def find_files(folder: Path, topics: Iterable[str], assignment: str | None = None,
               who: str = "the submission") -> dict[str, tuple[Path, str | None]]:
    """topic -> (file, assignment folder or None) for the topics found in one student's folder.

    ``TOPIC.py`` wins over ``TOPIC.ipynb`` in the same folder; files directly in
    ``folder`` win over files in an assignment subfolder.
    """
    found: dict[str, tuple[Path, str | None]] = {}
    places = [(folder, None)] + [(sub, sub.name) for sub in _subdirs(folder)
                                 if assignment is None or sub.name == assignment]
    for topic in topics:
        hits = []
        for place, name in places:
            for suffix in (".py", ".ipynb"):
                path = place / f"{topic}{suffix}"
                if path.is_file():
                    hits.append((path, name))
                    break
        if not hits:
            continue
        direct = [h for h in hits if h[1] is None]
        if direct:
            found[topic] = direct[0]
        elif len(hits) > 1:
            raise BatchError(f"{who} has {topic} in several assignments "
                             f"({', '.join(h[1] for h in hits)}); pass --assignment NAME to pick one")
        else:
            found[topic] = hits[0]
    return found


def discover(folder: Path, topics: list[str], assignment: str | None = None) -> list[Job]:
    """Every (student, topic) under ``folder``, in student order then course order."""
    root = submissions_root(folder)
    jobs = []
    for student in _subdirs(root):
        files = find_files(student, topics, assignment, who=f"student {student.name}")
        if not files:
            continue  # a folder with none of the topics is not a student (a stray folder)
        for topic in topics:
            path, where = files.get(topic, (None, None))
            jobs.append(Job(student.name, topic, path, where))
    return jobs


# -- notebooks -------------------------------------------------------------------------

def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _strip_magics(code: str) -> str:
    """IPython-only lines (``%time``, ``!pip``, ``%%writefile`` cells) become comments."""
    if code.lstrip().startswith("%%"):
        return "".join(f"# {line}" for line in code.splitlines(keepends=True))
    return "".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line
                   for line in code.splitlines(keepends=True))


def _imports_of(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [ast.get_source_segment(code, node) for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))]


def notebook_source(notebook: dict | str | Path) -> str:
    """The Python code a notebook submission is graded as.

    The code cells whose ``metadata.nbgrader.solution`` is true, in order,
    preceded by the top-level imports of the other code cells (a read-only
    setup cell usually holds them); nbgrader's test cells are never taken.
    Without any solution cell (a plain notebook), every code cell.
    """
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]

    def meta(cell: dict) -> dict:
        return (cell.get("metadata") or {}).get("nbgrader") or {}

    solution = [c for c in cells if meta(c).get("solution")]
    if not solution:
        chosen, imports = cells, []
    else:
        chosen = solution
        others = [c for c in cells if not meta(c).get("solution") and not meta(c).get("grade")]
        imports = [line for c in others for line in _imports_of(_strip_magics(_cell_source(c)))]
    code = [_strip_magics(_cell_source(c)).strip("\n").rstrip() + "\n" for c in chosen]
    # `from __future__` must open the module: hoist it out of whichever cell holds it.
    future = [line for part in [*imports, *code] for line in part.splitlines()
              if line.startswith("from __future__ import")]
    imports = [i for i in imports if not i.startswith("from __future__ import")]
    code = ["".join(line for line in part.splitlines(keepends=True)
                    if not line.startswith("from __future__ import")).strip("\n") + "\n" for part in code]
    parts = ["# Code extracted from a notebook by seqlings grade-batch.\n"]
    if future or imports:
        parts.append("\n".join(dict.fromkeys([*future, *imports])) + "\n")
    return "\n\n".join(parts + code)


def source_of(path: Path) -> str:
    """The Python source graded for ``path`` (a .py file as is, a notebook's extracted code)."""
    if path.suffix == ".ipynb":
        try:
            return notebook_source(path)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            # Graded as a file that does not parse: every test gets the error.
            return f"raise SyntaxError('the notebook {path.name} is not valid notebook JSON: {type(exc).__name__}')\n"
    return path.read_text(encoding="utf-8", errors="replace")


# -- 2. the journal --------------------------------------------------------------------

def journal_path(out: Path) -> Path:
    return out.with_name(out.name + JOURNAL_SUFFIX)


def journal_seed(path: Path) -> int | None:
    """The seed of an earlier run's journal at ``path`` (None: no journal, or no seed in it)."""
    if not path.exists():
        return None
    journal = Journal(path)
    journal.close()
    return journal.seed()


class Journal:
    """Append-only JSON lines, one per finished job; the last line for a key wins.

    A kill can leave a half-written last line: it is cut off when the journal
    is opened again, so the next append starts on a line of its own.
    """

    def __init__(self, path: Path, restart: bool = False):
        self.path = path
        self.rows: dict[str, dict] = {}
        if restart and path.exists():
            path.unlink()
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                with open(path, "r+b") as fh:
                    fh.truncate(end)
            for line in data[:end].splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "key" in row:
                    self.rows[row["key"]] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")

    def seed(self) -> int | None:
        """The seed the journaled rows were graded with (the latest row's), if any."""
        for row in reversed(list(self.rows.values())):
            if isinstance(row.get("seed"), int):
                return row["seed"]
        return None

    def done(self, key: str, fingerprint: str) -> bool:
        row = self.rows.get(key)
        return row is not None and row.get("fingerprint") == fingerprint

    def append(self, row: dict) -> None:
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows[row["key"]] = row

    def close(self) -> None:
        self._fh.close()


# -- 3. grading ----------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    timeout: float = 120.0
    seed: int = 0
    memory_mb: int | None = None
    # Trees a submission may not read (the class's folder, the outputs); not part of the fingerprint.
    private: tuple[str, ...] = ()


def fingerprint(source: str | None, settings: Settings) -> str:
    """Same file and same settings: the journal's row stands and the job is skipped."""
    text = json.dumps([source, settings.device, settings.timeout, settings.seed, settings.memory_mb])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _row(job: Job, fp: str, seed: int = 0, **fields) -> dict:
    row = {"key": job.key, "student": job.student, "topic": job.topic, "assignment": job.assignment,
           "file": None if job.path is None else str(job.path), "fingerprint": fp, "seed": seed,
           "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    row.update(fields)
    return row


def missing_row(job: Job, settings: Settings) -> dict:
    topic = course.topic(job.topic)
    return _row(job, fingerprint(None, settings), settings.seed, score=0.0, max_score=topic.points, flags=["missing"],
                tests=[], duration_s=0.0,
                message=f"no {job.topic}.py or {job.topic}.ipynb in the submission")


def flags_of(tests: list[dict]) -> list[str]:
    """The outcomes worth an instructor's look, in a fixed order."""
    seen = {t["outcome"] for t in tests}
    return [f for f in ("timeout", "forbidden", "error") if f in seen]


def _warm(threads: int, batch_pid: int) -> None:
    """Worker start: the heavy imports once, one torch thread so workers do not compete, a watchdog."""
    import threading

    import pytest  # noqa: F401
    import torch

    from grader import compare, engine, plugin, sandbox  # noqa: F401

    torch.set_num_threads(threads)
    sandbox.prestart()
    threading.Thread(target=_watch, args=(batch_pid,), daemon=True, name="seqlings-watchdog").start()


def _watch(batch_pid: int) -> None:
    """A killed batch (kill -9) leaves its workers waiting forever: end them and all they started."""
    import signal

    while _alive(batch_pid):
        time.sleep(1.0)
    # Submissions run in processes of their own sessions (and may have started more): freeze the
    # whole tree below this worker until no new process shows up, then kill every one of them.
    frozen: set[int] = set()
    for _ in range(20):
        new = _descendants(os.getpid()) - frozen
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        frozen |= new
    for pid in frozen:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    os._exit(1)


def _descendants(root: int) -> set[int]:
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent_of[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet is a zombie: dead all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def grade_job(job: Job, source: str, settings: Settings, scratch: str) -> dict:
    """Grade one job (in a worker). Never raises: a failure of the grader becomes a row with ``grader_error``."""
    from grader import engine

    fp = fingerprint(source, settings)
    path = job.path
    if path is not None and path.suffix != ".py":
        # A notebook: grade its extracted code from a file of its own.
        folder = Path(scratch) / job.student
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{job.topic}.py"
        path.write_text(source, encoding="utf-8")
    if settings.private:
        os.environ["SEQLINGS_PRIVATE"] = os.pathsep.join(settings.private)
    start = time.monotonic()
    try:
        report = engine.grade(job.topic, path, device=settings.device, timeout=settings.timeout,
                              seed=settings.seed, memory_mb=settings.memory_mb)
    except Exception as exc:  # noqa: BLE001 - reported per job, never kills the batch
        return _row(job, fp, settings.seed, score=0.0, max_score=course.topic(job.topic).points, flags=["grader-error"],
                    tests=[], duration_s=round(time.monotonic() - start, 3),
                    message=f"{type(exc).__name__}: {exc}"[:2000], grader_error=True)
    return _row(job, fp, settings.seed, score=report["score"], max_score=report["max_score"], flags=flags_of(report["tests"]),
                tests=report["tests"], duration_s=report["duration_s"], message="")


def _executor(workers: int, threads: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        # The fork server imports torch and the grader once; every worker is a fork of it.
        ctx.set_forkserver_preload(["torch", "pytest", "grader.engine", "grader.plugin", "grader.batch"])
    kwargs = {"max_tasks_per_child": 200} if sys.version_info >= (3, 11) else {}
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_warm,
                               initargs=(threads, os.getpid()), **kwargs)


@dataclass
class Outcome:
    """What ``run`` did: rows for every job (old and new), counts, and what could not be graded."""

    rows: list[dict]
    graded: int = 0
    skipped: int = 0
    failed: list[dict] = field(default_factory=list)


def run(jobs: list[Job], out: Path, settings: Settings, workers: int, *, restart: bool = False,
        progress: Callable[[int, int], Callable[[dict], None]] | None = None) -> Outcome:
    """Grade every job not already in the journal; return all rows of ``jobs`` in job order.

    ``progress(total, skipped)`` returns a callback called with each finished row.
    A row with a grader error is not journaled, so a rerun tries it again.
    """
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    journal = Journal(journal_path(out), restart=restart)
    outcome = Outcome(rows=[])
    try:
        todo: list[tuple[Job, str]] = []
        for job in jobs:
            source = None if job.path is None else source_of(job.path)
            if journal.done(job.key, fingerprint(source, settings)):
                outcome.skipped += 1
                continue
            if source is None:
                journal.append(missing_row(job, settings))
                outcome.graded += 1
                continue
            todo.append((job, source))
        tick = progress(len(jobs), len(jobs) - len(todo)) if progress else (lambda row: None)
        with tempfile.TemporaryDirectory(prefix="seqlings-batch-") as scratch:
            restarts = 0
            while todo and restarts < 3:
                pool = _executor(min(workers, len(todo)), 1)
                futures = {pool.submit(grade_job, job, source, settings, scratch): job.key
                           for job, source in todo}
                finished = set()
                try:
                    for future in as_completed(futures):
                        row = future.result()
                        finished.add(futures[future])
                        if row.get("grader_error"):
                            outcome.failed.append(row)
                        else:
                            journal.append(row)
                            outcome.graded += 1
                        tick(row)
                except BrokenProcessPool:
                    # A worker died (not a submission: those run in children). Retry what is left.
                    restarts += 1
                except BaseException:
                    # Ctrl-C: stop now; the journal holds every finished job for the rerun.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
                todo = [(j, s) for j, s in todo if j.key not in finished]
            for job, _ in todo:
                outcome.failed.append(_row(job, "", settings.seed, score=0.0, max_score=course.topic(job.topic).points,
                                           flags=["grader-error"], tests=[], duration_s=0.0,
                                           message="a grading worker died three times", grader_error=True))
    finally:
        journal.close()
    failed = {r["key"]: r for r in outcome.failed}
    outcome.rows = [journal.rows.get(job.key) or failed[job.key] for job in jobs
                    if job.key in journal.rows or job.key in failed]
    return outcome


# -- 4. outputs and summary ----------------------------------------------------------

def detail(row: dict) -> list[dict]:
    return [{k: t[k] for k in ("id", "points", "max_points", "outcome", "message")} for t in row["tests"]]


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        detail_json = json.dumps(detail(r) if r["tests"] else {"message": r.get("message", "")},
                                 ensure_ascii=False)
        writer.writerow([r["student"], r["topic"], f"{r['score']:g}", f"{r['max_score']:g}",
                         " ".join(r["flags"]), r["file"] or "", r.get("seed", 0), detail_json])
    return buf.getvalue()


def public_row(row: dict) -> dict:
    """A journal row as the JSON output shows it (without the journal's bookkeeping)."""
    keep = ("student", "topic", "assignment", "file", "score", "max_score", "flags", "duration_s",
            "message", "seed", "graded_at")
    return {**{k: row.get(k) for k in keep}, "tests": detail(row)}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_output(rows: list[dict], out: Path, fmt: str, summary: dict) -> list[Path]:
    """Render ``rows`` to ``out``; for gradescope, ``out`` is a folder with STUDENT/results.json."""
    if fmt == "csv":
        _atomic_write(out, csv_text(rows))
        return [out]
    if fmt == "json":
        data = {"submissions": [public_row(r) for r in rows], "summary": summary}
        _atomic_write(out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return [out]
    if fmt == "gradescope":
        from grader import gradescope

        by_student: dict[str, list[dict]] = {}
        for r in rows:
            by_student.setdefault(r["student"], []).append(r)
        written = []
        for student, student_rows in by_student.items():
            target = out / student / "results.json"
            _atomic_write(target, json.dumps(gradescope.results_json(student_rows), indent=2,
                                              ensure_ascii=False) + "\n")
            written.append(target)
        return written
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


BUCKETS = ("0", "<25%", "<50%", "<75%", "<100%", "100%")


def _bucket(score: float, max_score: float) -> str:
    if max_score <= 0 or score >= max_score:
        return "100%"
    if score <= 0:
        return "0"
    share = score / max_score
    return "<25%" if share < .25 else "<50%" if share < .5 else "<75%" if share < .75 else "<100%"


def summarize(rows: list[dict], top: int = 10) -> dict:
    """Score distribution per topic, the most failed tests, and the submissions worth a look."""
    per_topic: dict[str, dict] = {}
    for name in dict.fromkeys(r["topic"] for r in rows):
        these = [r for r in rows if r["topic"] == name]
        graded = [r for r in these if "missing" not in r["flags"] and "grader-error" not in r["flags"]]
        shares = [r["score"] / r["max_score"] if r["max_score"] else 1.0 for r in graded]
        buckets = Counter(_bucket(r["score"], r["max_score"]) for r in graded)
        per_topic[name] = {
            "submissions": len(graded), "missing": sum("missing" in r["flags"] for r in these),
            "max_score": max((r["max_score"] for r in these), default=0.0),
            "mean": round(statistics.fmean(r["score"] for r in graded), 2) if graded else None,
            "median": statistics.median(r["score"] for r in graded) if graded else None,
            "full_marks": sum(s >= 1.0 for s in shares),
            "distribution": {b: buckets.get(b, 0) for b in BUCKETS},
        }
    # A test with parameters counts once per submission that failed any of its cases.
    fails: Counter = Counter()
    outcomes: dict[str, Counter] = {}
    for r in rows:
        failed = {}
        for t in r["tests"]:
            if t["outcome"] != "passed":
                failed.setdefault(t["id"].split("[")[0], t["outcome"])
        for test, first in failed.items():
            fails[test] += 1
            outcomes.setdefault(test, Counter())[first] += 1
    graded_of = {name: info["submissions"] for name, info in per_topic.items()}
    most_failed = [{"test": test, "failed": n, "of": graded_of.get(test.split("::")[0], 0),
                    "outcomes": dict(outcomes[test])} for test, n in fails.most_common(top)]

    def flagged(flag: str) -> list[dict]:
        return [{"student": r["student"], "topic": r["topic"],
                 "tests": sum(t["outcome"] == flag for t in r["tests"])}
                for r in rows if flag in r["flags"]]

    return {"topics": per_topic, "most_failed_tests": most_failed,
            "timed_out": flagged("timeout"), "forbidden": flagged("forbidden"),
            "grader_errors": [{"student": r["student"], "topic": r["topic"], "message": r.get("message", "")}
                              for r in rows if "grader-error" in r["flags"]]}


def print_summary(console, summary: dict, limit: int = 20) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("topic", "graded", "missing", "mean", "median", "full", "0 <25 <50 <75 <100 100%",
                  title="Score distribution per topic",
                  caption="last column: submissions per share of the points")
    for name, info in summary["topics"].items():
        mean = "-" if info["mean"] is None else f"{info['mean']:g}/{info['max_score']:g}"
        median = "-" if info["median"] is None else f"{info['median']:g}"
        table.add_row(name, str(info["submissions"]), str(info["missing"]), mean, median,
                      str(info["full_marks"]), " ".join(str(info["distribution"][b]) for b in BUCKETS))
    console.print(table)
    if summary["most_failed_tests"]:
        failed = Table("test (any of its cases)", "failed", "outcomes", title="Most failed tests")
        for t in summary["most_failed_tests"]:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(t["outcomes"].items()))
            failed.add_row(escape(t["test"]), f"{t['failed']}/{t['of']}", outcomes)
        console.print(failed)
    for key, what in (("timed_out", "timed out"), ("forbidden", "flagged for forbidden calls"),
                      ("grader_errors", "could not be graded (rerun to retry)")):
        items = summary[key]
        if not items:
            continue
        shown = ", ".join(f"{i['student']}/{i['topic']}" for i in items[:limit])
        more = f" and {len(items) - limit} more" if len(items) > limit else ""
        console.print(f"[bold]{len(items)} submission(s) {what}:[/] {escape(shown)}{more}")
