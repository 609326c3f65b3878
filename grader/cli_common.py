"""What every command module shares: the one-line user error and the console.

Kept apart from ``grader.cli`` so command modules can import it without a cycle.
"""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """Bad usage or bad input: one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
