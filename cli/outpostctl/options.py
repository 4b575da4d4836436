"""What every command group takes the same way: `--json`, `--reason`, `--yes`.

Who made a change is the services' business: they record the principal of the token the
call carried (ADR 0012), so outpostctl sends no name of its own. Removing something asks
first on a terminal; with `--yes`, or when stdin is not a terminal (scripts, CI), it does
not ask.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

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
