"""Throughput of grade-batch against one `seqlings check` process per submission (run on demand).

    python benchmarks/batch.py [--n 8] [--topic clipping] [--workers 1 2]

Grades N copies of a submission (a mix: the reference, a mutant, a stub that
raises NotImplementedError) three ways in the same run: one `seqlings check
TOPIC --impl FILE` subprocess after another (each pays Python, torch and the
grader's start), then `grade-batch` with 1 and with 2 workers (warm workers:
torch and the grader imported once per worker). Prints submissions per
minute and the ratio against the sequential checks. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import batch, course, stubs  # noqa: E402
from tests.helpers import mutants  # noqa: E402


def make_submissions(folder: Path, topic: str, n: int) -> None:
    t = course.topic(topic)
    ref = t.reference.read_text()
    kinds = [ref, mutants(topic)[0].source(ref) if mutants(topic) else ref, stubs.make_stub(t, ref)]
    for i in range(n):
        (folder / f"s{i:03d}").mkdir(parents=True)
        (folder / f"s{i:03d}" / f"{topic}.py").write_text(kinds[i % len(kinds)])


def sequential_checks(folder: Path, topic: str) -> float:
    code = "import sys; sys.argv[0] = 'seqlings'; from grader.cli import main; main()"
    start = time.perf_counter()
    for student in sorted(folder.iterdir()):
        subprocess.run([sys.executable, "-c", code, "check", topic, "--impl", str(student / f"{topic}.py"),
                        "--device", "cpu", "--json", str(student / "report.json")],
                       cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def grade_batch(folder: Path, topic: str, workers: int, scratch: Path) -> float:
    out = scratch / f"grades-{workers}.csv"
    start = time.perf_counter()
    jobs = batch.discover(folder, [topic])
    outcome = batch.run(jobs, out, batch.Settings(device="cpu"), workers, restart=True)
    batch.write_output(outcome.rows, out, "csv", batch.summarize(outcome.rows))
    elapsed = time.perf_counter() - start
    assert outcome.graded == len(jobs) and not outcome.failed, outcome.failed
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="submissions to grade")
    parser.add_argument("--topic", default="clipping", help="topic of the submissions")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqlings-bench-") as tmp:
        folder = Path(tmp) / "subs"
        make_submissions(folder, args.topic, args.n)
        base = sequential_checks(folder, args.topic)
        print(f"{args.n} x {args.topic}: sequential `seqlings check`: {base:.1f}s "
              f"({60 * args.n / base:.1f}/min)")
        for workers in args.workers:
            took = grade_batch(folder, args.topic, workers, Path(tmp))
            print(f"grade-batch --workers {workers}: {took:.1f}s ({60 * args.n / took:.1f}/min), "
                  f"{base / took:.2f}x the sequential checks")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
