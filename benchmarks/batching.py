"""The `batch` group: grade-batch throughput against nbgrader autograde, and from 1 to 2 workers.

    python -m benchmarks --only batch        # also part of the full run, left out of --quick (minutes)

Reuses benchmarks/batch_vs_nbgrader.py's steps on N clipping submissions (a
quarter correct, half mutants, a quarter crashing), as STUDENT/TOPIC.py folders
and as an nbgrader course: `seqlings grade-batch` with 1 and with 2 workers,
in turns, several times, then `nbgrader autograde` once (about 100 s for 12
submissions; its own start-up dominates, so one run suffices for the ratio).
Scores must agree student by student. Figures, for information (the issue
sets no target): speed-up over nbgrader = nbgrader seconds / grade-batch
seconds, and the 1 -> 2 worker speed-up.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import batch_vs_nbgrader as bvn
from benchmarks.common import Figure, median

TOPIC, N, WORKERS = "clipping", 12, (1, 2)


def run(quick: bool) -> tuple[list[Figure], dict]:
    repeats = 1 if quick else 3
    codes = bvn.make_codes(TOPIC, N)
    seconds: dict[int, list[float]] = {w: [] for w in WORKERS}
    scores: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="seqlings-bench-batch-") as tmp:
        tmp = Path(tmp)
        bvn.write_folders(tmp / "subs", TOPIC, codes)
        bvn.write_course(tmp / "course", TOPIC, codes)
        for r in range(repeats):
            for w in WORKERS if r % 2 == 0 else reversed(WORKERS):
                took, scores[w], _ = bvn.time_grade_batch(tmp / "subs", TOPIC, w, tmp / f"grades-{w}.csv")
                seconds[w].append(took)
        nb_seconds, nb_scores, nb_rc = bvn.time_autograde(tmp / "course", TOPIC, list(codes))
    mismatches = sorted(s for w in WORKERS for s in codes if scores[w].get(s) != nb_scores.get(s))
    if mismatches:
        raise RuntimeError(f"grade-batch and nbgrader disagree on {mismatches}: the comparison is meaningless")
    w1, w2 = median(seconds[1]), median(seconds[2])
    per_min = {w: 60 * N / median(seconds[w]) for w in WORKERS}
    figures = [
        Figure("batch", f"grade-batch --workers {w} speed-up over nbgrader autograde", nb_seconds / median(seconds[w]),
               None, detail=f"{median(seconds[w]):.1f} s vs {nb_seconds:.1f} s for {N} {TOPIC} submissions; "
                            f"{per_min[w]:.0f} vs {60 * N / nb_seconds:.1f} submissions/min; scores identical",
               data={"seconds": seconds[w], "nbgrader_s": nb_seconds})
        for w in WORKERS]
    figures.append(Figure("batch", "grade-batch speed-up from 1 to 2 workers", w1 / w2, None,
                          detail=f"{w1:.1f} s -> {w2:.1f} s (ideal 2x on 2 cores)"))
    info = {"method": f"median of {repeats} grade-batch runs per worker count, in turns; nbgrader autograde once "
                      f"(exit code {nb_rc}); {N} {TOPIC} submissions from batch_vs_nbgrader.make_codes"}
    return figures, info
