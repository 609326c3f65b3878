"""The ``seqlings`` command: thin click commands over the course, the engine and the progress store.

Heavy imports (torch, pytest) happen inside the commands that grade, so
``--help``, ``list``, ``show`` and ``hint`` start instantly.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import click

from grader import course

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


from grader.cli_common import Seed, UserError, _console, draw_seed  # noqa: E402,F401 - re-exported for the command modules


def _topics(names: tuple[str, ...]) -> list[course.Topic]:
    try:
        return course.select(names)
    except course.UnknownTopic as exc:
        raise UserError(str(exc)) from None


# Commands defined in other modules, imported only when asked for (or listed by --help):
# the learner's everyday commands start without the quiz, nbgrader and instructor modules.
LAZY = {"quiz": "grader.cli_quiz:quiz", "progress": "grader.cli_quiz:progress",
        "nbgrader": "grader.cli_nbgrader:nbgrader", "release": "grader.cli_instructor:release",
        "grade-batch": "grader.cli_instructor:grade_batch", "gradescope": "grader.cli_instructor:gradescope"}


class LazyGroup(click.Group):
    """click's documented pattern for lazily loaded subcommands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY:
            import importlib

            module, attr = LAZY[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="seqlings")
def cli() -> None:
    """Drill sequence models: fill in exercises, check them against hidden graders, quiz yourself.

    \b
    Example:
        seqlings list
        seqlings show sdpa
        seqlings check sdpa
    """


@cli.command("list")
def list_() -> None:
    """List every topic with its status.

    \b
    Example:
        seqlings list
    """
    from rich.table import Table

    from grader import engine, progress, stubs

    table = Table("#", "topic", "title", "status", "file")
    files = {t.name: engine.display_path(t.exercise) for t in course.topics()}
    last = progress.last_checks(files)
    for i, t in enumerate(course.topics(), 1):
        status = _status(t, last.get(t.name), stubs)
        table.add_row(str(i), t.name, t.title, status, files[t.name])
    _console().print(table)


def _status(topic: course.Topic, last: tuple[float, float] | None, stubs) -> str:
    if not topic.exercise.exists():
        return "[red]missing[/] (seqlings reset " + topic.name + ")"
    if last is not None:
        score, max_score = last
        return "[green]passed[/]" if score == max_score else f"[yellow]failing[/] ({score:g}/{max_score:g})"
    from grader import release

    if release.is_pristine(topic, topic.exercise.read_text()):
        return "not started"
    return "in progress (not checked yet)"


@cli.command()
@click.argument("topic")
def show(topic: str) -> None:
    """Show a topic's exercise statement, the file to edit and the notes it drills.

    \b
    Example:
        seqlings show sdpa
    """
    from rich.markdown import Markdown

    t = _topics((topic,))[0]
    from grader import engine

    lines = [f"# {t.title} (`{t.name}`)", "", t.summary, "",
             f"**File to edit:** `{engine.display_path(t.exercise)}`", "",
             "**Functions:** " + ", ".join(f"`{f}`" for f in t.functions), "",
             "**Off limits here:** " + (", ".join(f"`{f}`" for f in t.forbidden) or "nothing"), "",
             "**Notes to read first:**", *[f"- {n}" for n in t.notes], "",
             f"**Points:** {t.points:g}. Hints: `seqlings hint {t.name}` ({len(t.hints)} of them). "
             f"Check: `seqlings check {t.name}`."]
    _console().print(Markdown("\n".join(lines)))


@cli.command()
@click.argument("topic")
@click.argument("n", type=int, required=False)
def hint(topic: str, n: int | None) -> None:
    """Show the next hint for a topic, or hint number N; each is more specific than the last.

    \b
    Example:
        seqlings hint sdpa
        seqlings hint sdpa 3
    """
    from grader import progress

    t = _topics((topic,))[0]
    if n is not None and not 1 <= n <= len(t.hints):
        raise UserError(f"{t.name} has hints 1 to {len(t.hints)}, not {n}")
    k = progress.next_hint(t.name, n, len(t.hints))
    more = "" if k == len(t.hints) else f"  (next: seqlings hint {t.name})"
    click.echo(f"Hint {k}/{len(t.hints)} for {t.name}: {t.hints[k - 1]}{more}")


@cli.command()
@click.argument("topics", nargs=-1, required=True)
@click.option("--impl", metavar="PATH", help="Grade this file (or DIR/TOPIC.py for a folder) instead of "
              "exercises/TOPIC.py; 'reference' grades the reference solution.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Device the code runs on (auto: cuda when available). Results are compared on the CPU.")
@click.option("--json", "json_out", metavar="FILE", help="Write the report as JSON to FILE; '-' writes it to stdout alone.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds allowed for each topic as a whole.")
@click.option("--seed", type=Seed(), default=0, show_default=True,
              help="Mixed into every test's seed: 0 keeps the fixed seeds so a failure looks the same each run; "
                   "'random' draws one (printed and in the report, to replay with --seed N).")
def check(topics: tuple[str, ...], impl: str | None, device: str, json_out: str | None,
          timeout: float, seed: int | str) -> None:
    """Run the hidden grader on your solution for TOPIC... (or 'all').

    Prints each test with its points and, for a failure, what differs and the
    likely cause. Exit code 0 means full marks, 1 that some test failed.

    \b
    Example:
        seqlings check sdpa
        seqlings check all --impl reference
        seqlings check sdpa --impl my_attempt.py --json report.json
    """
    chosen = _topics(topics)
    files = _impl_files(chosen, impl)
    from grader import sandbox

    sandbox.prestart()  # its torch import runs while this process imports its own
    quiet = json_out == "-"
    console = _console()
    reports = []
    if seed == "random":
        seed = draw_seed()
    if seed and not quiet:
        console.print(f"seed {seed} (replay with --seed {seed})")
    from grader import engine, progress

    try:
        device = engine.resolve_device(device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for t in chosen:
        if not quiet:
            console.print(f"[bold]{t.name}[/] · {t.title} · {engine.display_path(files[t.name])} on {device}")
        try:
            report = engine.grade(t.name, files[t.name], device=device, timeout=timeout, seed=seed,
                                  on_test=None if quiet else lambda r: _print_test(console, r))
        except FileNotFoundError as exc:
            raise UserError(f"{exc}; create it, or run `seqlings reset {t.name}` for a fresh stub") from None
        reports.append(report)
        if impl is None:
            progress.record_check(report)
        if not quiet:
            console.print(f"  [bold]{report['score']:g}/{report['max_score']:g}[/] points "
                          f"in {report['duration_s']:.1f}s\n")
    if not quiet and len(reports) > 1:
        _print_summary(console, reports)
    from grader import release

    note = release.check_note()
    if note and not quiet:
        console.print(f"[dim]{note}[/]")
    _write_json(reports, json_out)
    if any(r["score"] != r["max_score"] for r in reports):
        if not quiet and impl is None:
            first = next(r for r in reports if r["score"] != r["max_score"])
            console.print(f"Stuck? [bold]seqlings hint {first['topic']}[/]")
        sys.exit(1)


def _impl_files(chosen: list[course.Topic], impl: str | None) -> dict[str, Path]:
    from grader import engine

    if impl is not None and impl != "reference":
        path = Path(impl).expanduser().resolve()
        if path.is_dir():
            return {t.name: path / f"{t.name}.py" for t in chosen}
        if len(chosen) > 1:
            raise UserError("--impl FILE grades one topic; pass a folder holding TOPIC.py files to grade several")
        if not path.is_file():
            raise UserError(f"--impl {impl}: no such file")
        return {chosen[0].name: path}
    return {t.name: engine.impl_path(t, impl) for t in chosen}


MARKS = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "error": "[red]![/]",
         "timeout": "[magenta]⏱[/]", "forbidden": "[magenta]⊘[/]"}


def _print_test(console, result: dict) -> None:
    from rich.markup import escape

    mark = MARKS.get(result["outcome"], "?")
    console.print(f"  {mark} {result['points']:g}/{result['max_points']:g}  {escape(result['id'])}")
    if result["outcome"] != "passed":
        console.print(f"      [dim]{result['outcome']}:[/] {escape(result['message'])}")


def _print_summary(console, reports: list[dict]) -> None:
    from rich.table import Table

    table = Table("topic", "score", "passed", "result")
    for r in reports:
        passed = sum(t["outcome"] == "passed" for t in r["tests"])
        ok = r["score"] == r["max_score"]
        table.add_row(r["topic"], f"{r['score']:g}/{r['max_score']:g}", f"{passed}/{len(r['tests'])}",
                      "[green]full marks[/]" if ok else "[red]not yet[/]")
    console.print(table)


def _write_json(reports: list[dict], target: str | None) -> None:
    if target is None:
        return
    if len(reports) == 1:
        data = reports[0]
    else:
        data = {"topics": reports, "score": sum(r["score"] for r in reports),
                "max_score": sum(r["max_score"] for r in reports)}
    text = json.dumps(data, indent=2)
    if target == "-":
        click.echo(text)
        return
    try:
        Path(target).write_text(text + "\n")
    except OSError as exc:
        raise UserError(f"cannot write the report to {target}: {exc.strerror}") from None


@cli.command()
@click.argument("topic", required=False)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Device the code runs on.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=0.5, show_default=True,
              help="Seconds between looks at the file.")
def watch(topic: str | None, device: str, interval: float) -> None:
    """Re-check a topic every time you save it; move on to the next topic when it passes.

    Starts at TOPIC, or at the first topic not passed yet. Ctrl-C stops.

    \b
    Example:
        seqlings watch sdpa
    """
    from grader import engine, progress

    order = list(course.topics())
    if topic is None:
        files = {t.name: engine.display_path(t.exercise) for t in order}
        last = progress.last_checks(files)
        pending = [t for t in order if last.get(t.name, (0, 1))[0] != last.get(t.name, (0, 1))[1]]
        if not pending:
            click.echo("every topic is passed already")
            return
        current = pending[0]
    else:
        current = _topics((topic,))[0]
    console = _console()
    seen = None
    while True:
        try:
            stamp = current.exercise.stat().st_mtime_ns
        except FileNotFoundError:
            raise UserError(f"{current.exercise} is missing; run `seqlings reset {current.name}`") from None
        if stamp != seen:
            seen = stamp
            console.rule(f"{current.name} · {time.strftime('%H:%M:%S')}")
            report = engine.grade(current.name, current.exercise, device=device,
                                  on_test=lambda r: _print_test(console, r) if r["outcome"] != "passed" else None)
            progress.record_check(report)
            console.print(f"  [bold]{report['score']:g}/{report['max_score']:g}[/] points")
            if report["score"] == report["max_score"]:
                later = order[order.index(current) + 1:]
                if not later:
                    console.print("[green]Every topic done.[/]")
                    return
                current, seen = later[0], None
                console.print(f"[green]{report['topic']} passed.[/] Next: [bold]{current.name}[/] "
                              f"({engine.display_path(current.exercise)})")
                continue
            console.print(f"[dim]waiting for you to save {engine.display_path(current.exercise)} (Ctrl-C stops)[/]")
        time.sleep(interval)


@cli.command()
@click.argument("topic")
def reset(topic: str) -> None:
    """Restore the pristine stub of TOPIC; your version is kept as a backup.

    \b
    Example:
        seqlings reset sdpa
    """
    from grader import release

    t = _topics((topic,))[0]
    pristine = release.pristine_stub(t)
    if pristine is None:
        raise UserError(f"no pristine copy of {t.name} is available in this kit")
    target = t.exercise
    if target.exists():
        if target.read_text() == pristine:
            click.echo(f"{target} is already the pristine stub; nothing to do")
            return
        backups = course.workspace() / ".seqlings" / "backups"
        backups.mkdir(parents=True, exist_ok=True)
        backup = backups / f"{t.name}-{time.strftime('%Y%m%d-%H%M%S')}.py"
        n = 1
        while backup.exists():
            backup = backups / f"{t.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.py"
            n += 1
        shutil.copy2(target, backup)
        click.echo(f"your version is saved at {backup}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".py.tmp")
    tmp.write_text(pristine)
    tmp.replace(target)  # atomic: the file is either the old one or the new one, never half written
    click.echo(f"{target} is the pristine stub again")


def main() -> None:
    try:
        cli(prog_name="seqlings")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
