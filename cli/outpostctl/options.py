"""What every command group takes the same way: `--json`, `--reason`, `--yes`, the actor.

Changes are sent with an actor (`OUTPOST_ACTOR`, else the OS user name), which the
services record beside the change. Removing something asks first on a terminal; with
`--yes`, or when stdin is not a terminal (scripts, CI), it does not ask.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer

from outpostctl import output

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded with the change.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def actor() -> str:
    """Who is making the change, as recorded by the services."""
    explicit = os.environ.get("OUTPOST_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


def confirm_removal(question: str, *, yes: bool) -> None:
    """Ask `question` on a terminal unless `yes`; a "no" ends the command with exit 1."""
    if yes or not sys.stdin.isatty():
        return
    if not typer.confirm(question, default=False):
        output.print_error("not removed")
        raise typer.Exit(1)
