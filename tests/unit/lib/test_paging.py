"""outpost.paging: page sizes, and tokens that are only valid with the request that made them."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outpost import errors, paging

WHEN = datetime(2026, 12, 7, 16, 40, 1, 123456, tzinfo=UTC)
FILTERS = {"zone": "lab", "cidr": "10.0.0.0/24", "port": 22}


def test_page_size_zero_is_the_default_and_large_is_lowered_to_the_maximum() -> None:
    assert paging.page_size(0) == paging.DEFAULT_PAGE_SIZE == 100
    assert paging.page_size(7) == 7
    assert paging.page_size(50_000) == paging.MAX_PAGE_SIZE == 1000
    assert paging.page_size(0, default=1000, maximum=1000) == 1000


def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="page_size must not be negative"):
        paging.page_size(-1)


def test_a_token_round_trips_its_position_with_types_kept() -> None:
    token = paging.encode_token("devices", FILTERS, ("lab", "00ff", WHEN, 42))
    assert paging.decode_token(token, "devices", dict(FILTERS), (str, str, datetime, int)) == ("lab", "00ff", WHEN, 42)


def test_a_token_is_url_safe_and_carries_no_filter_values() -> None:
    token = paging.encode_token("devices", {"zone": "secret-zone/+"}, ("a/b+c", 1))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert b"secret-zone" not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_filter_order_does_not_matter_but_every_value_does() -> None:
    token = paging.encode_token("devices", {"a": 1, "b": "x"}, ("k",))
    assert paging.decode_token(token, "devices", {"b": "x", "a": 1}, (str,)) == ("k",)
    with pytest.raises(errors.InvalidArgument, match="issued for other filters"):
        paging.decode_token(token, "devices", {"a": 1, "b": "y"}, (str,))
    with pytest.raises(errors.InvalidArgument, match="issued for other filters"):
        paging.decode_token(token, "devices", {"a": 1}, (str,))


def test_a_token_of_another_list_is_refused() -> None:
    token = paging.encode_token("job_runs", {}, ("k",))
    with pytest.raises(errors.InvalidArgument, match="belongs to another list"):
        paging.decode_token(token, "devices", {}, (str,))


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        "%%%",
        "e30",  # {} : no fields
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "A" * 5000,
    ],
)
def test_a_garbled_token_is_refused_with_a_clear_message(token: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="page token is not valid; start again without a page token"):
        paging.decode_token(token, "devices", {}, (str,))


def _tampered(token: str, change: dict[str, object]) -> str:
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body.update(change)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "change",
    [
        {"p": ["lab", "not a number"]},  # wrong type where the query expects an int
        {"p": ["lab"]},  # too short
        {"p": ["lab", 1, 2]},  # too long
        {"p": ["lab", True]},  # a bool is not a whole number here
        {"p": [{"t": "2026-12-07T16:40:01"}, 1]},  # naive datetime
        {"p": "lab"},
        {"v": 2},
    ],
)
def test_a_tampered_position_is_refused_before_it_reaches_a_query(change: dict[str, object]) -> None:
    token = _tampered(paging.encode_token("devices", {}, ("lab", 7)), change)
    with pytest.raises(errors.InvalidArgument, match="page token is not valid"):
        paging.decode_token(token, "devices", {}, (str, int))


def test_a_tampered_filter_digest_is_refused() -> None:
    token = _tampered(paging.encode_token("devices", FILTERS, ("lab", 7)), {"f": "0" * 16})
    with pytest.raises(errors.InvalidArgument, match="other filters"):
        paging.decode_token(token, "devices", FILTERS, (str, int))


def test_page_from_gives_a_token_only_when_the_extra_row_exists() -> None:
    rows = [("a", 1), ("b", 2), ("c", 3)]
    page, token = paging.page_from(rows, 2, "letters", {}, lambda row: row)
    assert page == rows[:2]
    assert paging.decode_token(token, "letters", {}, (str, int)) == ("b", 2)
    assert paging.page_from(rows, 3, "letters", {}, lambda row: row) == (rows, "")
    assert paging.page_from([], 3, "letters", {}, lambda row: row) == ([], "")


@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.integers(min_value=-(2**63), max_value=2**63),
            st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
        ),
        max_size=5,
    )
)
def test_any_position_round_trips(position: list[paging.Key]) -> None:
    expect = tuple(datetime if isinstance(v, datetime) else type(v) for v in position)
    assert paging.decode_token(paging.encode_token("k", {"z": 1}, position), "k", {"z": 1}, expect) == tuple(position)


@given(st.text(max_size=200))
def test_any_text_as_a_token_is_a_position_or_invalid_argument(token: str) -> None:
    with contextlib.suppress(errors.InvalidArgument):
        paging.decode_token(token, "k", {}, (str, int))


def test_an_aware_datetime_in_another_zone_compares_as_the_same_instant() -> None:
    other = WHEN.astimezone(timezone(timedelta(hours=5)))
    (decoded,) = paging.decode_token(paging.encode_token("k", {}, (other,)), "k", {}, (datetime,))
    assert decoded == WHEN


def test_an_in_memory_list_pages_by_its_unique_key_and_survives_inserts() -> None:
    items = [f"s{n:03d}" for n in range(25)]
    seen: list[str] = []
    token = ""
    while True:
        page, token = paging.page_of_sorted(
            items, lambda s: (s,), (str,), kind="sessions", filters={}, requested_size=10, token=token
        )
        seen.extend(page)
        items = [*items, f"s{len(items):03d}x", "a-ahead"]  # one behind the position, one ahead
        if not token:
            break
    originals = [f"s{n:03d}" for n in range(25)]
    assert [s for s in seen if s in originals] == originals
    assert len(seen) == len(set(seen)) and "a-ahead" not in seen
