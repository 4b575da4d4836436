"""Rendering: rich tables for people, JSON for scripts, one error line for failures.

Everything a collector or server sends (names, zones, addresses, error details) is
untrusted text: before it reaches a terminal, control characters are escaped so a
crafted collector name cannot move the cursor or rewrite the admin's screen. JSON output
is escaped by the encoder.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 100_000
"""Columns when stdout is not a terminal: wide enough that no row is ever wrapped."""


class _Stdout(Console):
    """The terminal's width on a terminal; when piped or redirected, no width limit.

    A script reading `devices list | awk ...` must get one row per line with every MAC
    address and fingerprint whole, whatever width the terminal beside the pipe has (rich
    would otherwise wrap to it, to $COLUMNS, or to 80). A width given in code (tests)
    still wins.
    """

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, width=width, **kwargs)
        self._given_width = width

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = super().size
        if self._given_width is None and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size
        self._given_width = self._width

    @property
    def width(self) -> int:
        return self.size.width

    @width.setter
    def width(self, width: int) -> None:
        self._width = self._given_width = width


stdout = _Stdout(highlight=False)

MIN_TRUNCATED_WIDTH = 14
STATE_STYLES = {
    # collectors and schedules
    "pending": "yellow",
    "enabled": "green",
    "disabled": "red",
    # job runs
    "queued": "yellow",
    "dispatched": "cyan",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
}


SEVERITY_STYLES = {"ok": "green", "info": "cyan", "warning": "yellow", "error": "red"}
SEVERITY_MARKERS = {"ok": "OK", "info": "INFO", "warning": "WARN", "error": "ERROR"}
"""`collectors explain` findings: a fixed-width word per severity, readable without colour."""


def safe(value: object) -> str:
    """`value` as text with every non-printable character shown as an escape."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def print_error(message: str) -> None:
    """One unwrapped line on stderr, so scripts and logs can match it whole."""
    sys.stderr.write(f"error: {safe(message)}\n")


def print_note(message: str) -> None:
    """One line on stderr for people, beside output a script reads from stdout."""
    sys.stderr.write(f"{safe(message)}\n")


def print_line(message: str, style: str = "") -> None:
    """One unwrapped line on stdout; `message` must already be made safe."""
    stdout.print(Text(message, style=style), soft_wrap=True)


def print_json(value: Any) -> None:
    """Dataclasses, lists of them and datetimes as indented JSON on stdout."""
    sys.stdout.write(json.dumps(plain(value), indent=2) + "\n")


def iso(when: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, or None."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """How long ago, for people: "just now", "42s ago", "5m ago", "3h ago", "2d ago"."""
    if when is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            if unit == "d" and seconds >= 30 * 86400:
                return when.astimezone(UTC).strftime("%Y-%m-%d")
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def until(when: datetime | None, now: datetime | None = None) -> str:
    """How long until, for people: "in 42s", "in 5m", "in 3h", "in 2d"; past -> `ago`."""
    if when is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (when - now).total_seconds()
    if seconds < 1:
        return ago(when, now)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            if unit == "d" and seconds >= 30 * 86400:
                return when.astimezone(UTC).strftime("%Y-%m-%d")
            return f"in {int(seconds // size)}{unit}"
    return f"in {int(seconds)}s"


def moment(when: datetime | None, now: datetime | None = None) -> str:
    """Exact and relative: "2026-11-24T04:26:22Z (5m ago)", "... (in 3h)", or "never"."""
    if when is None:
        return "never"
    now = now or datetime.now(UTC)
    relative = until(when, now) if when > now else ago(when, now)
    return f"{iso(when)} ({relative})"


def duration(seconds: float | None) -> str:
    """An elapsed time, for people: "0.4s", "12s", "1m 05s", "2h 03m", "3d 04h"; None -> "-"."""
    if seconds is None or seconds < 0:
        return "-"
    if round(seconds, 1) < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def host(address: str) -> str:
    """The host part of a remote address ("203.0.113.7:40122" -> "203.0.113.7").

    The client port is noise in a table; `collectors show` prints the whole address.
    """
    head, sep, port = address.rpartition(":")
    return head if sep and port.isdigit() and (not head.count(":") or head.endswith("]")) else address


def state_text(state: str) -> Text:
    return Text(safe(state), style=STATE_STYLES.get(state, ""))


def yes_no(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("no", style="dim")


def online_text(online: bool) -> Text:
    """The registry's online verdict as one word (`collectors list`, `show`)."""
    return Text("online", style="green") if online else Text("offline", style="red")


def severity_text(severity: str) -> Text:
    """A finding's severity as a padded marker; an unknown one is shown as sent."""
    marker = SEVERITY_MARKERS.get(severity, safe(severity).upper())
    return Text(f"{marker:<5}", style=SEVERITY_STYLES.get(severity, ""))


def size(count: int) -> str:
    """Bytes for people: "512 B", "3.2 KiB", "12.0 MiB", "1.5 GiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Text | str]],
    *,
    truncate: Sequence[str] = (),
    show_header: bool = True,
    min_widths: Sequence[int] = (),
) -> Table:
    """A borderless table; plain strings are made safe, `Text` cells are trusted as built.

    When the terminal is too narrow, the columns named in `truncate` give up width first
    and end in "…" (fingerprints: `show` and `--json` print them whole); the rest wrap.
    Piped output is never narrow (`_Stdout`): every cell is printed whole, a row a line.
    `min_widths` and `show_header` let a list printed page by page keep its columns
    (`listing.StreamedTable`): each column's `min_width` is set to the width it takes,
    unless those widths would not fit the terminal.
    """
    cells = [[cell if isinstance(cell, Text) else Text(safe(cell)) for cell in row] for row in rows]
    widths = [max([cell_len(h), *(r[i].cell_len for r in cells)]) for i, h in enumerate(headers)]
    shrinkable = [i for i, h in enumerate(headers) if h in truncate]
    limit = max(widths, default=0)
    if shrinkable:
        gaps = 2 * (len(headers) - 1)
        spare = stdout.width - gaps - sum(w for i, w in enumerate(widths) if i not in shrinkable)
        limit = max(MIN_TRUNCATED_WIDTH, spare // len(shrinkable))
        for row in cells:
            for i in shrinkable:
                row[i].truncate(limit, overflow="ellipsis")
    grid = Table(box=None, header_style="bold", pad_edge=False, show_header=show_header)
    floors = list(min_widths) or [0] * len(headers)
    taken = [max(floors[i], min(w, limit) if i in shrinkable else w) for i, w in enumerate(widths)]
    # Floors only while they fit: on a narrow terminal, fitting it beats aligning pages.
    keep = bool(min_widths) and sum(taken) + 2 * (len(headers) - 1) <= stdout.width
    for i, header in enumerate(headers):
        grid.add_column(header, overflow="fold", min_width=taken[i] if keep else None)
    for row in cells:
        grid.add_row(*row)
    return grid


def fields(pairs: Iterable[tuple[str, Text | str]]) -> Table:
    """Two columns, label and value, for one record (`collectors show`, `server info`)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(label, value if isinstance(value, Text) else Text(safe(value)))
    return grid


def plain(value: Any) -> Any:
    """`value` with dataclasses as dicts and datetimes as ISO strings, ready for `json`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
