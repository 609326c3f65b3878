"""Instructor commands: ``release``, ``grade-batch`` and ``gradescope``, thin over their modules.

Registered on the ``seqlings`` group by ``grader/cli.py``. A student bundle
ships this module (the CLI imports it) but its commands refuse to run there:
they need the hidden graders and the references.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from grader import course
from grader.cli_common import Seed, UserError, _console, draw_seed


def _split_topics(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--topics a,b --topics c`` -> (a, b, c)."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def _chosen(values: tuple[str, ...]) -> list[course.Topic]:
    try:
        return course.select(_split_topics(values))
    except course.UnknownTopic as exc:
        raise UserError(str(exc)) from None


def _instructor_kit() -> None:
    from grader import release

    if release.bundle_info() is not None:
        raise UserError("this is a student bundle: instructor commands need the full kit with the hidden graders")


TOPICS_HELP = "Topics to include, in course order (repeat or comma-separate: --topics clipping,masking); default all."


@click.command("release")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--topics", "topics", multiple=True, metavar="NAMES", help=TOPICS_HELP)
@click.option("--force", is_flag=True, help="Replace OUT_DIR when it holds an earlier bundle (nothing else is ever replaced).")
def release(out_dir: Path, topics: tuple[str, ...], force: bool) -> None:
    """Write a student bundle to OUT_DIR: stubs, public tests, quizzes and the CLI, nothing hidden.

    The bundle has no reference solutions and no hidden tests (every file is
    searched for them before the command succeeds); its `seqlings check` runs
    the public tests and says that the hidden ones are graded by you.

    \b
    Example:
        seqlings release dist/student-kit
        seqlings release dist/week3 --topics clipping,masking
    """
    from grader import release as lib

    _instructor_kit()
    chosen = _chosen(topics)
    try:
        files = lib.build(out_dir.resolve(), chosen, force=force)
    except lib.ReleaseError as exc:
        raise UserError(str(exc)) from None
    public = sum(len(lib.split_tests(t.grader.read_text())[0]) for t in chosen)
    click.echo(f"wrote {len(files)} files to {out_dir}: {len(chosen)} topic(s), {public} public test(s); "
               f"audited: no reference code, no hidden tests")


@click.command("grade-batch")
@click.argument("submissions_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output file (csv, json), or folder for --format gradescope (STUDENT/results.json); "
                   "a journal OUT.journal.jsonl beside it makes a rerun resume.")
@click.option("--topics", "topics", multiple=True, metavar="NAMES", help=TOPICS_HELP)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Submissions graded at once (default: the number of CPU cores).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "gradescope"]), default=None,
              help="Output format (default: json when --out ends in .json, else csv).")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds allowed for each submission of a topic as a whole.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device the submissions run on.")
@click.option("--seed", type=Seed(), default="random", show_default=True,
              help="Seed of the test inputs: 'random' draws one per batch (kept in the journal, so a resumed "
                   "batch uses the same), a number replays a batch; 0 is the fixed seeds students see.")
@click.option("--memory-mb", type=click.IntRange(min=256), default=None,
              help="Memory limit of each submission's process in MiB (CPU only; default 6144).")
@click.option("--assignment", metavar="NAME", default=None,
              help="In nbgrader's submitted/STUDENT/ASSIGNMENT/ layout, grade only this assignment's folder.")
@click.option("--restart", is_flag=True, help="Forget the journal of an earlier run and grade everything again.")
def grade_batch(submissions_dir: Path, out: Path, topics: tuple[str, ...], workers: int | None,
                fmt: str | None, timeout: float, device: str, seed: int | str, memory_mb: int | None,
                assignment: str | None, restart: bool) -> None:
    """Grade every student's folder in SUBMISSIONS_DIR, in parallel, into one row per student and topic.

    A student is a folder holding TOPIC.py files (or TOPIC.ipynb notebooks,
    graded as their solution cells); nbgrader's submitted/STUDENT/ASSIGNMENT/
    layout works as is. Each submission runs in its own process with the
    usual timeouts and memory limit, so a hang, crash or cheat costs that
    submission only. Kill it at any time: the same command resumes where it
    stopped. Exit code 0 once every submission is graded (whatever the
    scores), 1 when some could not be graded (rerun to retry them).

    \b
    Example:
        seqlings grade-batch submissions/ --out grades.csv
        seqlings grade-batch course/ --out grades.json --topics clipping --workers 8
        seqlings grade-batch submissions/ --out results/ --format gradescope
    """
    from grader import batch

    _instructor_kit()
    chosen = _chosen(topics)
    fmt = fmt or ("json" if out.suffix.lower() == ".json" else "csv")
    out = out.resolve()
    if fmt == "gradescope" and out.is_file():
        raise UserError(f"--format gradescope writes a folder, and {out} is a file; pass a folder to --out")
    if fmt != "gradescope" and out.is_dir():
        raise UserError(f"--out {out} is a folder; pass a file name (e.g. grades.{fmt})")
    if out.resolve().is_relative_to(submissions_dir.resolve()):
        raise UserError("--out must lie outside SUBMISSIONS_DIR (it would be read as a submission)")
    try:
        jobs = batch.discover(submissions_dir, [t.name for t in chosen], assignment)
    except batch.BatchError as exc:
        raise UserError(str(exc)) from None
    if not jobs:
        names = ", ".join(f"{t.name}.py" for t in chosen[:3])
        raise UserError(f"no submissions in {submissions_dir}: expected one folder per student holding "
                        f"{names}... (or nbgrader's submitted/STUDENT/ASSIGNMENT/TOPIC.ipynb)")
    workers = workers or os.cpu_count() or 1
    if seed == "random":
        # Inputs no submission can predict; a resumed batch keeps the seed it started with.
        seed = (None if restart else batch.journal_seed(batch.journal_path(out))) or draw_seed()
    # Classmates' folders and the outputs stay out of every submission's reach.
    private = (str(submissions_dir.resolve()), str(out), str(batch.journal_path(out)))
    settings = batch.Settings(device=device, timeout=timeout, seed=seed, memory_mb=memory_mb, private=private)
    console = _console()
    students = len({j.student for j in jobs})
    console.print(f"{students} student(s) x {len(chosen)} topic(s) from {submissions_dir}, {workers} worker(s), "
                  f"seed {seed} (replay one with `seqlings check TOPIC --impl FILE --seed {seed}`)")
    outcome = _run_with_progress(batch, jobs, out, settings, workers, restart)
    summary = batch.summarize(outcome.rows)
    try:
        written = batch.write_output(outcome.rows, out, fmt, summary)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    batch.print_summary(console, summary)
    where = out if fmt != "gradescope" else f"{out}/STUDENT/results.json ({len(written)} files)"
    console.print(f"graded {outcome.graded}, resumed {outcome.skipped} from the journal; wrote {where}")
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} submission(s) could not be graded; run the same command "
                      "again to retry them[/]")
        sys.exit(1)


def _run_with_progress(batch, jobs, out, settings, workers, restart):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=_console(stderr=True), transient=False) as bar:
        task = bar.add_task("grading", total=len(jobs))

        def start(total: int, done: int):
            bar.update(task, total=total, completed=done)

            def tick(row: dict) -> None:
                bar.update(task, advance=1, description=f"{row['student']}/{row['topic']}")
            return tick

        try:
            return batch.run(jobs, out, settings, workers, restart=restart, progress=start)
        except KeyboardInterrupt:
            bar.stop()
            click.echo(f"interrupted; finished submissions are in {batch.journal_path(out)}: "
                       "run the same command to resume", err=True)
            sys.exit(130)


@click.command("gradescope")
@click.argument("out_zip", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topics", "topics", multiple=True, metavar="NAMES", help=TOPICS_HELP)
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds allowed for each topic of a submission.")
@click.option("--hidden-visibility", type=click.Choice(["hidden", "after_due_date", "after_published", "visible"]),
              default="after_published", show_default=True,
              help="When students see the hidden tests' names and messages (public tests are always visible).")
def gradescope(out_zip: Path, topics: tuple[str, ...], timeout: float, hidden_visibility: str) -> None:
    """Build a Gradescope autograder zip (setup.sh, run_autograder, the kit) for the topics.

    Upload OUT.zip as the assignment's autograder. Students upload their
    TOPIC.py files (or notebooks); run_autograder writes Gradescope's
    results.json with every test, public ones visible.

    \b
    Example:
        seqlings gradescope autograder.zip --topics clipping,masking
    """
    from grader import gradescope as lib
    from grader import release as rel

    _instructor_kit()
    chosen = _chosen(topics)
    if out_zip.suffix.lower() != ".zip":
        raise UserError(f"{out_zip}: name the output OUT.zip (Gradescope takes a zip)")
    try:
        names = lib.build(out_zip, chosen, timeout=timeout, hidden_visibility=hidden_visibility)
    except rel.ReleaseError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"wrote {out_zip} ({len(names)} files) for {', '.join(t.name for t in chosen)}; "
               "upload it as the autograder")


COMMANDS = (release, grade_batch, gradescope)
