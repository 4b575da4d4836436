"""`outpostctl audit list`: who changed what, when and from where, newest first.

The registry and the scheduler each keep the trail of the changes made through them;
this merges the two by time. `--limit N` shows the newest N (default 50) and says when
older events remain; nothing is cut without a notice.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from outpostctl import output
from outpostctl.access_client import AuditClient, AuditEvent
from outpostctl.endpoints import endpoints_of
from outpostctl.options import JsonFlag, whole_number

app = typer.Typer(help="The audit trail: every change with its authenticated principal.", no_args_is_help=True)

SERVICES = ("registry", "scheduler")
MAX_LIMIT = 1000


@app.command("list")
def list_events(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", parser=whole_number(1, MAX_LIMIT), help="Newest events to show.")
    ] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Changes across the registry and the scheduler, newest first."""
    events: list[AuditEvent] = []
    more = False
    for service in SERVICES:
        with AuditClient(endpoints_of(ctx), service) as client:
            found, next_before = client.page(limit=limit)
        events += found
        more = more or bool(next_before)
    events.sort(key=lambda e: (e.at is not None, e.at), reverse=True)
    more = more or len(events) > limit
    shown = events[:limit]
    if as_json:
        output.print_json(shown)
    else:
        rows: list[list[Text | str]] = [
            [
                e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "-",
                e.principal,
                e.method,
                e.target,
                Text(e.outcome, style="green" if e.outcome == "ok" else "red"),
                output.host(e.peer.removeprefix("ipv4:").removeprefix("ipv6:")),
            ]
            for e in shown
        ]
        headers = ["AT (UTC)", "PRINCIPAL", "CHANGE", "TARGET", "OUTCOME", "FROM"]
        output.stdout.print(output.table(headers, rows, truncate=["PRINCIPAL", "CHANGE", "TARGET", "FROM"]))
    if more:
        output.print_note(f"showing the newest {len(shown)}; older events exist (--limit up to {MAX_LIMIT})")
