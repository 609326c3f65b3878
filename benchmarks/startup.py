"""The `cli` group: start-up time of the light commands against `python -c "import click"`.

    python -m benchmarks --only cli [--quick]

`seqlings --help`, `seqlings list` and `seqlings quiz --answers FILE` (FILE
answers every question of the sdpa bank, rightly) each run as a fresh
process of the venv's `seqlings` entry point, as a learner types them, with
progress in a scratch database and bytecode cached in scratch (see
common.subprocess_env). The floor is `python -c "import
click"` with the same interpreter: a command can hardly start faster than
the library it is built on. All commands run in turns, after one warm-up run
each; ratio = median command time / median floor time.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Figure, median, run_timed, seqlings_exe, subprocess_env

TARGET = 2.5
QUIZ_BANK = "sdpa"


def answers_file(folder: Path) -> Path:
    """Right answers to every question of the bank, in the answers-file format (JSON: id -> answer)."""
    from grader import quiz

    bank = quiz.load_banks()[QUIZ_BANK]
    right = {}
    for q in bank.questions:
        right[q.id] = list(q.answer) if q.type == "multi" else q.answer[0] if q.type == "short" else q.answer
    path = folder / "answers.json"
    path.write_text(json.dumps(right, indent=1))
    return path


def run(quick: bool) -> tuple[list[Figure], dict]:
    exe = seqlings_exe()
    repeats = 7 if quick else 15
    with tempfile.TemporaryDirectory(prefix="seqlings-bench-cli-") as tmp:
        tmp = Path(tmp)
        answers = answers_file(tmp)
        n_answers = len(json.loads(answers.read_text()))
        env = subprocess_env(tmp)
        commands = {
            'python -c "import click"': [sys.executable, "-c", "import click"],
            "seqlings --help": [exe, "--help"],
            "seqlings list": [exe, "list"],
            f"seqlings quiz --answers FILE ({QUIZ_BANK} bank)": [exe, "quiz", "--answers", str(answers)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for r in range(repeats + 1):
            for name, cmd in commands.items() if r % 2 else reversed(commands.items()):
                took, done = run_timed(cmd, env)
                if done.returncode != 0:
                    raise RuntimeError(f"{name} exited {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
                if r:  # the first round only warms the file and bytecode caches
                    times[name].append(took)
    floor_name = next(iter(commands))
    floor = median(times[floor_name])
    figures = [Figure("cli", name, median(ts) / floor, TARGET,
                      detail=f"{1e3 * median(ts):.0f} ms vs {1e3 * floor:.0f} ms for {floor_name}",
                      data={"seconds": ts, "floor_seconds": times[floor_name]})
               for name, ts in times.items() if name != floor_name]
    info = {"method": f"median of {repeats} runs each, in turns after a warm-up round; entry point {exe}; "
                      f"{n_answers} answers, all right (exit code 0)",
            "floor_s": times[floor_name]}
    return figures, info
