"""The ``quiz`` and ``progress`` commands: thin click commands over ``grader.quiz`` and ``grader.progress``.

No torch on this path: the quiz starts instantly.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime
from pathlib import Path

import click

from grader import course
from grader import quiz as quizlib


def _user_error(message: str) -> click.ClickException:
    from grader.cli_common import UserError  # lazily: grader.cli registers these commands

    return UserError(message)


KIND_HELP = {
    "single": "one letter",
    "multi": "every letter that applies, e.g. a,c",
    "numeric": "a number; a fraction such as 3/4 is fine",
    "short": "a word or a short phrase",
}


@click.command()
@click.argument("topics", nargs=-1)
@click.option("-n", "n", type=click.IntRange(min=1), metavar="N", help="Ask at most N questions.")
@click.option("--seed", type=int, metavar="S",
              help="Fix the order of the questions and the letters of their choices (default: a new order "
                   "each run; with --answers, the banks' own order).")
@click.option("--due", is_flag=True,
              help="Ask only the cards due for review: questions answered before, rescheduled after every answer.")
@click.option("--answers", "answers_file", metavar="FILE",
              help="Answer from FILE instead of asking: TOML or JSON mapping question id to answer (a letter or "
                   "the choice's text; a list or \"a,c\" for multiple select; a number or 3/4). Asks only those "
                   "ids; exit code 0 only if every answer is right.")
@click.option("--json", "json_out", metavar="FILE",
              help="Write a report as JSON to FILE: each question's id, your answer, whether it is right, the "
                   "explanation, and the score. '-' writes it to stdout alone (with --answers).")
def quiz(topics: tuple[str, ...], n: int | None, seed: int | None, due: bool, answers_file: str | None,
         json_out: str | None) -> None:
    """Quiz yourself on the concepts behind TOPIC... (default: every topic), with spaced repetition.

    Each answer gets immediate feedback with an explanation and reschedules
    the question (FSRS): a wrong answer comes back soon, a right one later.
    `--due` asks only what is due. Exit code 0 when every answer is right,
    1 otherwise.

    \b
    Example:
        seqlings quiz sdpa ctc -n 10
        seqlings quiz --due
        seqlings quiz --answers my_answers.toml --json report.json
    """
    quiet = json_out == "-"
    if quiet and answers_file is None:
        raise _user_error("--json - needs --answers (an interactive quiz prints to stdout); give a file name")
    try:
        answers = None
        if answers_file is not None:
            if n is not None or due:
                raise quizlib.QuizError("--answers asks exactly the ids in the file; leave out -n and --due")
            answers = quizlib.read_answers(Path(answers_file))
        # Only the banks asked for (by name, or by the answers' ids) are read: a quicker start.
        banks = quizlib.load_banks(only=quizlib.needed_banks(topics, answers or ()))
        if not banks:
            raise quizlib.QuizError(f"no quiz banks in {quizlib.quizzes_dir()}")
        chosen = quizlib.pick_banks(banks, topics)
        if answers is None and seed is None:
            seed = random.SystemRandom().randrange(10**6)
        asked = quizlib.select(chosen, n=n, seed=seed, due_only=due, ids=list(answers) if answers else None)
    except quizlib.QuizError as exc:
        raise _user_error(str(exc)) from None
    if not asked:
        _nothing_due()
        return
    results: list[quizlib.Result] = []
    try:
        for i, item in enumerate(asked, 1):
            if answers is None:
                raw = _ask(item, i, len(asked))
            else:
                raw = answers[item.question.id]
            result = quizlib.Result(item, raw, quizlib.grade(item, raw))
            quizlib.record(result)  # saved before the next question: an interruption keeps it
            results.append(result)
            if not quiet:
                _feedback(result, interactive=answers is None)
    except click.Abort:
        click.echo(f"\nStopped: {len(results)} answer(s) saved.", err=True)
        raise
    score = sum(r.correct for r in results)
    if not quiet:
        click.echo(click.style(f"Score: {score}/{len(results)}", bold=True) + _next_review())
    _write_report(results, seed, json_out)
    if score != len(results):
        sys.exit(1)


def _ask(item: quizlib.Asked, i: int, total: int) -> str:
    q = item.question
    click.echo(click.style(f"[{i}/{total}] {q.bank}", dim=True) + click.style(f"  ({q.id})", dim=True))
    click.echo(click.style(q.prompt, bold=True))
    for letter, choice in zip(quizlib.LETTERS, item.choices):
        click.echo(f"  {letter}) {choice}")

    def check(raw: str) -> str:
        try:
            quizlib.parse(item, raw)
        except quizlib.InvalidAnswer as exc:
            raise click.BadParameter(str(exc)) from None
        return raw

    return click.prompt(f"Your answer ({KIND_HELP[q.type]})", value_proc=check)


def _feedback(result: quizlib.Result, interactive: bool) -> None:
    q = result.asked.question
    if interactive:
        if result.correct:
            click.echo(click.style("✓ Right.", fg="green") + f" {q.explanation}\n")
        else:
            click.echo(click.style("✗ Not quite.", fg="red") + f" The answer: {quizlib.answer_text(result.asked)}")
            click.echo(f"  {q.explanation}\n")
        return
    if result.correct:
        click.echo(click.style("✓ ", fg="green") + q.id)
    else:
        click.echo(click.style("✗ ", fg="red") + f"{q.id}: you answered {json.dumps(result.given)}; "
                   f"the answer: {quizlib.answer_text(result.asked)}")
        click.echo(f"  {q.explanation}")


def _when(due: datetime) -> str:
    seconds = (due - quizlib.now()).total_seconds()
    if seconds <= 0:
        return "now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            k = round(seconds / size)
            return f"in {k} {unit}{'s' if k != 1 else ''}"
    return "in under a minute"


def _next_review() -> str:
    due = quizlib.next_due()
    return f"  (next review due {_when(due)}: seqlings quiz --due)" if due else ""


def _nothing_due() -> None:
    due = quizlib.next_due()
    later = f" The next card is due {_when(due)}." if due else " No card has been reviewed yet."
    click.echo(f"Nothing is due for review.{later} `seqlings quiz` asks new questions.")


def _write_report(results: list[quizlib.Result], seed: int | None, target: str | None) -> None:
    if target is None:
        return
    data = {
        "seed": seed,
        "score": sum(r.correct for r in results),
        "max_score": len(results),
        "questions": [{"id": r.asked.question.id, "bank": r.asked.question.bank, "type": r.asked.question.type,
                       "given": r.given, "correct": r.correct, "answer": r.asked.question.answer,
                       "choices": list(r.asked.choices), "explanation": r.asked.question.explanation}
                      for r in results],
    }
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if target == "-":
        click.echo(text)
        return
    try:
        Path(target).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise _user_error(f"cannot write the report to {target}: {exc.strerror}") from None


@click.command()
def progress() -> None:
    """Show where you stand: exercises passed, quiz accuracy per topic and quiz cards due.

    \b
    Example:
        seqlings progress
    """
    from rich.console import Console
    from rich.table import Table

    from grader import engine
    from grader import progress as store

    console = Console(highlight=False)
    try:
        banks = quizlib.load_banks()
    except quizlib.QuizError as exc:
        console.print(f"[yellow]quiz banks skipped:[/] {exc}")
        banks = {}
    files = {t.name: engine.display_path(t.exercise) for t in course.topics()}
    last = store.last_checks(files)
    checks = _check_counts(store, files)
    stats = quizlib.stats()
    table = Table("topic", "exercise", "checks", "quiz accuracy", "cards seen", "due now")
    names = list(course.names()) + [b for b in banks if b not in course.names()]
    for name in names:
        if name in files:
            score = last.get(name)
            status = ("not checked" if score is None else "[green]passed[/]" if score[0] == score[1]
                      else f"[yellow]failing[/] ({score[0]:g}/{score[1]:g})")
            n_checks = str(checks.get(name, 0))
        else:
            status, n_checks = "[dim]quiz only[/]", ""
        s = stats.get(name, quizlib.BankStats())
        accuracy = f"{s.correct}/{s.answered} ({s.accuracy:.0%})" if s.answered else "[dim]-[/]"
        total = len(banks[name].questions) if name in banks else 0
        seen = f"{s.seen}/{total}" if name in banks else "[dim]no bank[/]"
        table.add_row(name, status, n_checks, accuracy, seen, str(s.due) if s.due else "")
    console.print(table)
    passed = sum(1 for t, (score, best) in last.items() if score == best)
    due = sum(s.due for s in stats.values())
    hint = " (seqlings quiz --due)" if due else ""
    console.print(f"Exercises passed: {passed}/{len(files)}. Quiz cards due now: {due}{hint}.")


def _check_counts(store, files: dict[str, str]) -> dict[str, int]:
    """How many times each topic's own exercise file was checked (other files are not the learner's)."""
    if not store.db_path().exists():
        return {}
    with store.connect() as conn:
        rows = conn.execute("SELECT topic, impl, COUNT(*) FROM checks GROUP BY topic, impl").fetchall()
    return {topic: count for topic, impl, count in rows if files.get(topic) == impl}
