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


class Seed(click.ParamType):
    """A test seed: a number, or 'random' for one drawn now (and printed, to replay it)."""

    name = "seed"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "random":
            return value
        try:
            seed = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'random'", param, ctx)
        if not 0 <= seed < 2**31:
            self.fail(f"{seed} is out of range: use 0 to {2**31 - 1}, or 'random'", param, ctx)
        return seed


def draw_seed() -> int:
    """A seed a submission cannot predict (1 .. 2**31-1; 0 means the learner's fixed seeds)."""
    import secrets

    return secrets.randbelow(2**31 - 1) + 1
