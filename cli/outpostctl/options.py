"""What every command group takes the same way: `--json`, `--reason`, `--yes`, and whole numbers.

Who made a change is the services' business: they record the principal of the token the
call carried (ADR 0012), so outpostctl sends no name of its own. Removing something asks
first on a terminal; with `--yes`, or when stdin is not a terminal (scripts, CI), it does
not ask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from outpost.numbers import parse_ascii_int
from outpostctl import output

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded with the change.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm_removal(question: str, *, yes: bool) -> None:
    """Ask `question` on a terminal unless `yes`; a "no" ends the command with exit 1."""
    if yes or not sys.stdin.isatty():
        return
    if not typer.confirm(question, default=False):
        output.print_error("not removed")
        raise typer.Exit(1)


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An option's parser: ASCII digits only, within low..high (click's INT takes "1_0" and fullwidth digits).

    Use as `typer.Option(..., parser=whole_number(1, 100))` on every numeric option.
    """

    def parse(text: str) -> int:
        if isinstance(text, int):  # a default passes through
            return text
        try:
            value = parse_ascii_int(text, "the value")
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if not low <= value <= high:
            raise typer.BadParameter(f"{value} is not in the range {low}-{high}")
        return value

    return parse
