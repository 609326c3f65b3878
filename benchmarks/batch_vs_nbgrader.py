"""Throughput of `seqlings grade-batch` against `nbgrader autograde` on the same submissions (run on demand).

    python benchmarks/batch_vs_nbgrader.py [--n 50] [--topic clipping] [--workers 1 8]

Generates N submissions of one topic, a mix of the reference (correct), the
topic's mutants from tests/corpus/TOPIC/mutants.py (wrong, partial marks) and
a solution whose first function calls os._exit(3) (crashing), twice: as
STUDENT/TOPIC.py folders for grade-batch, and as an nbgrader course
(`seqlings nbgrader`, `nbgrader generate_assignment`, each student's code in
the release notebook's solution cell, submitted/STUDENT/ASSIGNMENT/TOPIC.ipynb).
Then times, in the same run, `seqlings grade-batch` (with 1 worker and with
os.cpu_count() workers, or --workers) and `nbgrader autograde`; prints
seconds, submissions per minute and the ratio against nbgrader, compares the
scores per student, and writes everything to
benchmarks/results/batch_vs_nbgrader.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from grader import course  # noqa: E402
from tests.helpers import mutants  # noqa: E402

ASSIGNMENT = "ps1"
RESULTS = ROOT / "benchmarks" / "results" / "batch_vs_nbgrader.json"


def crashing(reference: str) -> str:
    """The reference with `os._exit(3)` as the first statement of its first public function."""
    lines = reference.splitlines(keepends=True)
    fn = next(n for n in ast.parse(reference).body
              if isinstance(n, ast.FunctionDef) and not n.name.startswith("_"))
    first = fn.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    at = first.end_lineno if has_doc else first.lineno - 1  # 0-based index of the line to insert before
    indent = " " * (fn.col_offset + 4)
    lines.insert(at, f"{indent}import os\n{indent}os._exit(3)\n")
    return "".join(lines)


def make_codes(topic: str, n: int) -> dict[str, tuple[str, str]]:
    """Student id -> (kind, code): every 4th correct, every 4th crashing, the rest mutants in turn."""
    reference = course.topic(topic).reference.read_text()
    wrong = mutants(topic)
    crash = crashing(reference)
    out, m = {}, 0
    for i in range(n):
        if i % 4 == 0:
            kind, code = "correct", reference
        elif i % 4 == 3:
            kind, code = "crash", crash
        elif wrong:
            mutant = wrong[m % len(wrong)]
            m += 1
            kind, code = f"mutant:{mutant.name}", mutant.source(reference)
        else:
            kind, code = "correct", reference
        out[f"s{i:03d}"] = (kind, code)
    return out


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(course.kit_root()), os.environ.get("PYTHONPATH", "")]))


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def seqlings(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; sys.argv[0] = 'seqlings'; from grader.cli import main; main()", *args]


def nbgrader(*args: str) -> list[str]:
    return [sys.executable, "-m", "nbgrader", *args]


def write_folders(folder: Path, topic: str, codes: dict[str, tuple[str, str]]) -> None:
    for student, (_, code) in codes.items():
        (folder / student).mkdir(parents=True)
        (folder / student / f"{topic}.py").write_text(code)


def write_course(root: Path, topic: str, codes: dict[str, tuple[str, str]]) -> None:
    run(seqlings("nbgrader", str(root), "--assignment", ASSIGNMENT, "--topics", topic), ROOT)
    run(nbgrader("db", "assignment", "add", ASSIGNMENT), root)
    run(nbgrader("generate_assignment", ASSIGNMENT), root)
    release = (root / "release" / ASSIGNMENT / f"{topic}.ipynb").read_text()
    (root / "students.csv").write_text("id\n" + "\n".join(codes) + "\n")
    run(nbgrader("db", "student", "import", "students.csv"), root)
    for student, (_, code) in codes.items():
        nb = nbformat.reads(release, as_version=4)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "solution")
        answer.source = code
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{topic}.ipynb")


def time_grade_batch(folder: Path, topic: str, workers: int, out: Path) -> tuple[float, dict[str, float | None], int]:
    start = time.perf_counter()
    done = run(seqlings("grade-batch", str(folder), "--out", str(out), "--topics", topic,
                        "--workers", str(workers), "--restart"), ROOT, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"grade-batch failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with open(out, newline="") as f:
        scores = {row["student"]: float(row["score"]) if row["score"] not in ("", None) else None
                  for row in csv.DictReader(f) if row["topic"] == topic}
    return elapsed, scores, done.returncode


def time_autograde(root: Path, topic: str, students: list[str]) -> tuple[float, dict[str, float | None], int]:
    start = time.perf_counter()
    done = run(nbgrader("autograde", ASSIGNMENT), root, check=False)
    elapsed = time.perf_counter() - start
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, float | None] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in students:
            try:
                scores[student] = float(gb.find_submission_notebook(topic, ASSIGNMENT, student).score)
            except MissingEntry:
                scores[student] = None  # autograde could not grade it
    if done.returncode != 0:
        (RESULTS.parent / "nbgrader_autograde.log").write_text(done.stdout + "\n" + done.stderr)
    return elapsed, scores, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="submissions to grade")
    parser.add_argument("--topic", default="clipping", help="topic of the submissions")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="grade-batch worker counts to time (default: 1 and os.cpu_count())")
    args = parser.parse_args()
    workers = args.workers or sorted({1, os.cpu_count() or 1})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    codes = make_codes(args.topic, args.n)
    kinds = {s: k for s, (k, _) in codes.items()}

    with tempfile.TemporaryDirectory(prefix="seqlings-bench-nbgrader-") as tmp:
        tmp = Path(tmp)
        write_folders(tmp / "subs", args.topic, codes)
        write_course(tmp / "course", args.topic, codes)

        timings: list[dict] = []
        batch_scores: dict[int, dict[str, float | None]] = {}
        for w in workers:
            took, scores, rc = time_grade_batch(tmp / "subs", args.topic, w, tmp / f"grades-{w}.csv")
            batch_scores[w] = scores
            timings.append({"method": f"grade-batch --workers {w}", "seconds": took, "exit_code": rc})
        took, nb_scores, rc = time_autograde(tmp / "course", args.topic, list(codes))
        timings.append({"method": "nbgrader autograde", "seconds": took, "exit_code": rc})

    base = timings[-1]["seconds"]
    for t in timings:
        t["per_minute"] = 60 * args.n / t["seconds"]
        t["ratio_vs_nbgrader"] = base / t["seconds"]  # >1: faster than nbgrader

    print(f"{args.n} x {args.topic} ({sum(k == 'correct' for k in kinds.values())} correct, "
          f"{sum(k.startswith('mutant') for k in kinds.values())} mutants, "
          f"{sum(k == 'crash' for k in kinds.values())} crashing), {os.cpu_count()} cores")
    print(f"{'method':<26} {'seconds':>9} {'subs/min':>9} {'vs nbgrader':>12}")
    for t in timings:
        print(f"{t['method']:<26} {t['seconds']:>9.1f} {t['per_minute']:>9.1f} {t['ratio_vs_nbgrader']:>11.2f}x")

    mismatches = []
    for student in codes:
        theirs = nb_scores.get(student)
        for w, scores in batch_scores.items():
            ours = scores.get(student)
            if ours != theirs and not (ours is not None and theirs is not None and abs(ours - theirs) < 1e-6):
                mismatches.append({"student": student, "kind": kinds[student], "workers": w,
                                   "grade_batch": ours, "nbgrader": theirs})
    if mismatches:
        print(f"\n{len(mismatches)} score mismatches (grade-batch vs nbgrader):")
        for m in mismatches:
            print(f"  {m['student']} ({m['kind']}) --workers {m['workers']}: "
                  f"grade-batch {m['grade_batch']} vs nbgrader {m['nbgrader']}")
    else:
        print("\nscores agree for every student")

    RESULTS.write_text(json.dumps({
        "n": args.n, "topic": args.topic, "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "timings": timings, "mismatches": mismatches,
        "students": {s: {"kind": kinds[s], "nbgrader": nb_scores.get(s),
                         **{f"grade_batch_w{w}": batch_scores[w].get(s) for w in batch_scores}} for s in codes},
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
