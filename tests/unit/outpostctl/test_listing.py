"""`listing`: every page fetched, rows streamed, `--limit` says when more exist, JSON complete.

The pages come from a function standing in for a List RPC's pages (a plain list sliced the
way the services slice it); the services' own paging is tested against them in
tests/integration/test_device_pages.py and tests/e2e/test_list_pages.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from outpostctl import listing, output
from outpostctl.errors import CommandError

ROWS = [{"name": f"row-{n:04d}", "size": n} for n in range(2345)]


def fetch_from(rows: list[dict[str, object]], calls: list[tuple[int, str]]) -> listing.Fetch[dict[str, object]]:
    def fetch(size: int, token: str) -> tuple[list[dict[str, object]], str]:
        calls.append((size, token))
        start = int(token or 0)
        end = start + size
        return rows[start:end], str(end) if end < len(rows) else ""

    return fetch


def run(
    limit: int | None, as_json: bool, capsys: pytest.CaptureFixture[str], token: str = ""
) -> tuple[str, str, list[tuple[int, str]]]:
    calls: list[tuple[int, str]] = []
    pages = listing.Listing(fetch_from(ROWS, calls), limit=limit, page_token=token)
    listing.print_rows(
        pages,
        noun="rows",
        headers=["NAME", "SIZE"],
        row=lambda r: [str(r["name"]), str(r["size"])],
        as_json=as_json,
        empty="no rows",
    )
    captured = capsys.readouterr()
    return captured.out, captured.err, calls


def second_column(line: str) -> int:
    match = re.match(r"\S+\s+", line)
    assert match is not None
    return match.end()


@pytest.fixture(autouse=True)
def plain_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "stdout", Console(width=200, force_terminal=False, highlight=False))


def test_json_without_a_limit_lists_every_row_of_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    out, err, calls = run(None, True, capsys)
    assert json.loads(out) == ROWS
    assert [size for size, _ in calls] == [1000, 1000, 1000]
    assert err == ""


def test_json_of_an_empty_list_is_an_empty_array(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[int, str]] = []
    listing.print_json_rows(listing.Listing(fetch_from([], calls)), "rows")
    assert json.loads(capsys.readouterr().out) == []


def test_json_with_a_limit_carries_the_token_to_continue_from(capsys: pytest.CaptureFixture[str]) -> None:
    out, err, calls = run(1500, True, capsys)
    first = json.loads(out)
    assert first["rows"] == ROWS[:1500] and first["next_page_token"] == "1500"
    assert calls == [(1000, ""), (500, "1000")]
    assert "… more rows exist: raise --limit, or continue with --page-token 1500" in err
    out, err, _ = run(5000, True, capsys, token=first["next_page_token"])
    assert json.loads(out) == {"rows": ROWS[1500:], "next_page_token": ""}
    assert err == ""


def test_a_limit_exactly_at_the_end_prints_no_more_line(capsys: pytest.CaptureFixture[str]) -> None:
    out, err, _ = run(len(ROWS), False, capsys)
    assert err == ""
    assert len(out.splitlines()) == 1 + len(ROWS)


def test_the_table_streams_every_page_with_one_header_and_aligned_columns(capsys: pytest.CaptureFixture[str]) -> None:
    out, err, _ = run(None, False, capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE"]
    assert [line.split()[0] for line in lines[1:]] == [r["name"] for r in ROWS]
    assert {second_column(line) for line in lines} == {second_column(lines[0])}  # SIZE starts in one column
    assert err == ""


def test_the_table_with_a_limit_prints_the_more_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    out, err, _ = run(10, False, capsys)
    assert len(out.splitlines()) == 11
    assert err == "… more rows exist: raise --limit, or continue with --page-token 10\n"


def test_an_empty_list_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[int, str]] = []
    listing.print_rows(
        listing.Listing(fetch_from([], calls)),
        noun="rows",
        headers=["NAME"],
        row=lambda r: [str(r)],
        as_json=False,
        empty="no rows",
    )
    assert capsys.readouterr().out == "no rows\n"


def test_columns_only_grow_from_page_to_page(capsys: pytest.CaptureFixture[str]) -> None:
    table = listing.StreamedTable(["A", "B"])
    table.print_page([["long-value-here", "x"]])
    table.print_page([["s", "y"]])
    lines = capsys.readouterr().out.splitlines()
    assert second_column(lines[1]) == second_column(lines[2]) == second_column(lines[0])


def test_since_takes_a_duration_back_or_a_timestamp() -> None:
    before = datetime.now(UTC)
    assert before - timedelta(hours=1, seconds=5) < listing.parse_since("1h", "--seen-since") <= before
    assert listing.parse_since("2026-12-01T08:00Z", "--seen-since") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert listing.parse_since("2026-12-01T08:00", "--seen-since") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(CommandError, match="expected a duration"):
        listing.parse_since("yesterday", "--seen-since")
    with pytest.raises(CommandError, match="or a time like"):
        listing.parse_since("2026-13-45", "--seen-since")


def test_on_a_narrow_terminal_pages_fit_it_rather_than_keep_wide_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(output, "stdout", Console(width=30, force_terminal=False, highlight=False))
    table = listing.StreamedTable(["A", "B"])
    table.print_page([["x" * 40, "y"]])
    table.print_page([["s", "t"]])
    assert all(len(line) <= 30 for line in capsys.readouterr().out.splitlines())
