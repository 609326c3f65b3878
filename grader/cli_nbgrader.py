"""The ``nbgrader`` command: a thin click command over ``grader.nbgrader_export``.

Heavy imports (nbformat, and torch through the graders) happen inside the
command, so ``seqlings --help`` stays instant.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from grader import course

ASSIGNMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class NbgraderError(click.ClickException):
    """Bad usage or an export that cannot be made: one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


@click.command("nbgrader")
@click.argument("course_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", default="seqlings", show_default=True, metavar="NAME",
              help="Assignment to write: the notebooks go to COURSE_DIR/source/NAME/. Letters, digits, _ and -.")
@click.option("--topics", "topic_args", multiple=True, metavar="TOPIC[,TOPIC...]",
              help="Topics to export, comma-separated or repeated (default: every topic, in course order).")
def nbgrader(course_dir: Path, assignment: str, topic_args: tuple[str, ...]) -> None:
    """Write an nbgrader course: one source notebook per topic, with solution regions and hidden tests.

    Creates COURSE_DIR/nbgrader_config.py when the course has none (root,
    course id, python3 kernel, a cell timeout that fits grading, stderr
    warnings ignored) and writes COURSE_DIR/source/NAME/TOPIC.ipynb for each
    topic from the reference, the stub and the grader; re-running updates
    them. Each test cell calls the kit's grader by test id: the kit must be
    installed in the kernel that autogrades.

    \b
    Example:
        seqlings nbgrader ~/course --assignment week3 --topics masking,clipping
        cd ~/course && nbgrader generate_assignment week3
    """
    from grader import nbgrader_export

    if not ASSIGNMENT_NAME.match(assignment):
        raise NbgraderError(f"assignment name {assignment!r} must be letters, digits, _ and -, e.g. week3")
    names = [name.strip() for arg in topic_args for name in arg.split(",") if name.strip()]
    try:
        topics = course.select(names)
        written = nbgrader_export.export_course(course_dir, assignment, topics)
    except (course.UnknownTopic, nbgrader_export.ExportError) as exc:
        raise NbgraderError(str(exc)) from None
    except OSError as exc:
        raise NbgraderError(f"cannot write the course at {course_dir}: {exc.strerror or exc}") from None
    for item in written:
        click.echo(f"{item.status:9}  {item.path}")
    click.echo(f"Next: cd {written[0].path.parent} && nbgrader generate_assignment {assignment}")
