"""Every `outpostctl <thing> list`: fetch every page, print rows as pages arrive, never cut silently.

The services answer List calls a page at a time (`outpost.paging`, ADR 0027). A list
command asks for the largest page (`PAGE_SIZE`) and keeps asking while the answer carries
a `next_page_token`, printing each page as it arrives, so the first rows show at once and
memory stays flat on a million devices. A page that fails ends the command with the
service's error (exit 1) after the rows already printed: a script sees the failure, and
JSON output is then left unterminated, so a parser fails too rather than read a short list.

`--limit N` stops after N rows. When more exist, a line says so on stderr, with the token
to continue from (`--page-token`, with the same filters), so piped rows stay clean:

    … more devices exist: raise --limit, or continue with --page-token <token>

Tables: the header is printed once; each page's columns are at least as wide as every
earlier page's (widths only grow), so a page boundary can widen a column but never narrows
one (on a terminal too narrow for those widths, each page fits the terminal instead).
JSON: without `--limit`, the whole list (the same array as before lists paged); with
`--limit`, an object `{"<things>": [...], "next_page_token": "..."}` ("" when nothing more),
so a script can continue exactly where it stopped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

import typer
from rich.text import Text

from outpostctl import output
from outpostctl.errors import CommandError
from outpostctl.options import whole_number

PAGE_SIZE = 1000
"""What a list command asks for: the services' maximum page (outpost.paging.MAX_PAGE_SIZE)."""
MAX_LIMIT = 1_000_000_000

T = TypeVar("T")

Limit = Annotated[
    int | None,
    typer.Option(
        "--limit",
        metavar="N",
        parser=whole_number(1, MAX_LIMIT),
        help="At most N rows; a line on stderr says when more exist. Default: every row, page by page.",
    ),
]
PageToken = Annotated[
    str,
    typer.Option(
        "--page-token",
        metavar="TOKEN",
        help="Continue from where a --limit run stopped (the token it printed); same filters.",
    ),
]


def parse_since(text: str, flag: str) -> datetime:
    """A duration back from now ("1h", "7d", "1w2d") or a timestamp ("2026-12-01T08:00Z";
    without an offset it is UTC). Resolved once, so every page is asked with the same time."""
    from outpostctl.tokens import parse_duration  # here: tokens.py imports this module

    value = text.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        if value[:1].isdigit() and any(sep in value for sep in "-:"):
            raise CommandError(
                f"{flag} {value!r}: expected a duration like 1h or 7d, or a time like 2026-12-01T08:00Z"
            ) from None
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value, flag))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


Fetch = Callable[[int, str], tuple[list[T], str]]
"""One page: (page size, page token) -> (rows, next page token or "")."""


def every_row(fetch: Fetch[T]) -> list[T]:
    """Every row of every page, for commands that need the whole list (not streamed)."""
    rows: list[T] = []
    for page in Listing(fetch).pages():
        rows.extend(page)
    return rows


@dataclass
class Listing(Generic[T]):
    """The pages of one list command, read lazily; `next_page_token` is set once they are read."""

    fetch: Fetch[T]
    limit: int | None = None
    page_token: str = ""
    next_page_token: str = field(default="", init=False)
    count: int = field(default=0, init=False)

    def pages(self) -> Iterator[list[T]]:
        token = self.page_token
        while True:
            wanted = PAGE_SIZE if self.limit is None else min(PAGE_SIZE, self.limit - self.count)
            rows, token = self.fetch(wanted, token)
            rows = rows[:wanted]  # a server may send fewer, never more
            self.count += len(rows)
            self.next_page_token = token
            if rows:
                yield rows
            if not token or (self.limit is not None and self.count >= self.limit):
                return

    @property
    def more(self) -> bool:
        return bool(self.next_page_token)


class StreamedTable:
    """A table printed a page at a time: header once, column widths that only grow."""

    def __init__(self, headers: Sequence[str], *, truncate: Sequence[str] = ()) -> None:
        self.headers = list(headers)
        self.truncate = truncate
        self.widths = [0] * len(headers)
        self.printed = False

    def print_page(self, rows: Sequence[Sequence[Text | str]]) -> None:
        grid = output.table(
            self.headers, rows, truncate=self.truncate, show_header=not self.printed, min_widths=self.widths
        )
        self.widths = [max(w, c.min_width or 0) for w, c in zip(self.widths, grid.columns, strict=True)]
        output.stdout.print(grid)
        self.printed = True


def print_rows(
    listing: Listing[T],
    *,
    noun: str,
    headers: Sequence[str],
    row: Callable[[T], Sequence[Text | str]],
    as_json: bool,
    empty: str,
    truncate: Sequence[str] = (),
) -> None:
    """The whole list command's output: a streamed table or JSON, and the "more" line."""
    if as_json:
        print_json_rows(listing, noun)
    else:
        table = StreamedTable(headers, truncate=truncate)
        for page in listing.pages():
            table.print_page([row(item) for item in page])
        if not table.printed:
            output.print_line(empty)
    print_more(listing, noun)


def print_json_rows(listing: Listing[T], noun: str) -> None:
    """JSON, written page by page: an array, or with --limit an object with the next token."""
    key = noun.replace(" ", "_")
    out = sys.stdout
    first = True
    prefix = "[\n" if listing.limit is None else f'{{\n  "{key}": [\n'
    indent = "  " if listing.limit is None else "    "
    for page in listing.pages():
        for item in page:
            out.write(prefix if first else ",\n")
            first = False
            text = json.dumps(output.plain(item), indent=2)
            out.write("\n".join(indent + line for line in text.splitlines()))
        out.flush()
    if listing.limit is None:
        out.write("[]\n" if first else "\n]\n")
        return
    items = f'{{\n  "{key}": []' if first else "\n  ]"
    out.write(f'{items},\n  "next_page_token": {json.dumps(listing.next_page_token)}\n}}\n')


def print_more(listing: Listing[Any], noun: str) -> None:
    """The line that says rows were left out, on stderr, with the token to continue from."""
    if listing.more:
        output.print_note(
            f"… more {noun} exist: raise --limit, or continue with --page-token {listing.next_page_token}"
        )
