"""Page tokens for every List RPC: AIP-158 pages over a keyset, one format for all services.

A list is read in a stable total order that ends in a unique tiebreaker (a device's
`(zone, ip_sort, id)`, a job run's `(created_at, id)` newest first, a collector's
`(name, instance_uid)`). A page token carries the position of the last row returned
(its sort key and id) and the next page starts strictly after it (keyset, or "seek",
pagination: `WHERE (k, id) > (:k, :id) ORDER BY k, id LIMIT n + 1`). So:

- rows inserted while a client pages either land ahead of its position (it sees them
  once) or behind it (it never sees them); a row that existed when paging began is never
  skipped or shown twice, whatever is inserted or deleted meanwhile;
- every page costs one index range scan, however deep (no OFFSET).

The token is opaque to clients (URL-safe base64 of a small JSON body without padding)
and valid only with the request that produced it: it names its list (`kind`) and holds
a digest of the request's filters; a token presented with other filters, to another
list, or garbled is INVALID_ARGUMENT with a message that says to start again. The token
is not signed: it holds only a position in a list the caller may read anyway, so a
forged token yields at most a page the caller could have asked for with other filters;
its values are type-checked before they reach a query (`expect`).

Page sizes follow AIP-158: 0 means the list's default (`DEFAULT_PAGE_SIZE`), larger
than the maximum is lowered to it (`MAX_PAGE_SIZE`, documented in every List request's
proto comment), negative is refused. Nothing is ever truncated silently: a response
carries `next_page_token` whenever more rows follow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from outpost import errors

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_VERSION = 1
_MAX_TOKEN_CHARS = 2048
"""Longer than any token this module writes: a bigger one is refused before decoding."""

Key = str | int | datetime
"""One value of a position: text, a whole number, or a timezone-aware datetime."""
_Row = TypeVar("_Row")


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The size to use: `default` for 0, at most `maximum`; InvalidArgument when negative."""
    if requested < 0:
        raise errors.InvalidArgument("page_size must not be negative")
    return min(requested or default, maximum)


def filters_digest(filters: Mapping[str, Any]) -> str:
    """A short digest of a request's filters (values as the server normalised them)."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_token(kind: str, filters: Mapping[str, Any], position: Sequence[Key]) -> str:
    """The token for the page after `position` of list `kind` read with `filters`."""
    body = {"v": _VERSION, "k": kind, "f": filters_digest(filters), "p": [_encode_key(value) for value in position]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, filters: Mapping[str, Any], expect: Sequence[type]) -> tuple[Key, ...]:
    """The position a token names, each value checked against `expect` (str, int or datetime).

    InvalidArgument when the token is garbled, made for another list, or made for a request
    with other filters.
    """
    if len(token) > _MAX_TOKEN_CHARS:
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("version")
        token_kind, digest, encoded = str(body["k"]), str(body["f"]), body["p"]
        if not isinstance(encoded, list):
            raise ValueError("position")
        position = tuple(_decode_key(value) for value in encoded)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise _invalid() from None
    if token_kind != kind:
        raise errors.InvalidArgument(f"the page token belongs to another list ({token_kind[:40]!r}, not {kind!r})")
    if digest != filters_digest(filters):
        raise errors.InvalidArgument(
            "the page token was issued for other filters; repeat the first request's filters, "
            "or start again without a page token"
        )
    if len(position) != len(expect) or not all(
        _is(value, kind_) for value, kind_ in zip(position, expect, strict=True)
    ):
        raise _invalid()
    return position


def page_from(
    rows: Sequence[_Row], size: int, kind: str, filters: Mapping[str, Any], position_of: Callable[[_Row], Sequence[Key]]
) -> tuple[list[_Row], str]:
    """Split `size + 1` fetched rows into the page and the next token (the extra row only
    says that more follow). `position_of(row)` is the row's keyset position."""
    page = list(rows[:size])
    more = len(rows) > size
    return page, encode_token(kind, filters, position_of(page[-1])) if more and page else ""


def page_of_sorted(
    items: Sequence[_Row],
    position_of: Callable[[_Row], tuple[Key, ...]],
    types: Sequence[type],
    *,
    kind: str,
    filters: Mapping[str, Any],
    requested_size: int,
    token: str,
) -> tuple[list[_Row], str]:
    """A page of an in-memory list (a gateway's live sessions), with the same tokens.

    `items` are sorted here by `position_of`, which must be unique per item and of `types`;
    the page starts strictly after the token's position, so the keyset rules above hold.
    """
    size = page_size(requested_size)
    ordered = sorted(items, key=position_of)
    if token:
        after = decode_token(token, kind, filters, types)
        ordered = [item for item in ordered if position_of(item) > after]
    return page_from(ordered[: size + 1], size, kind, filters, position_of)


def _invalid() -> errors.InvalidArgument:
    return errors.InvalidArgument("the page token is not valid; start again without a page token")


def _encode_key(value: Key) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a page position")
        return {"t": value.isoformat()}
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"page positions hold text, whole numbers and datetimes, not {type(value).__name__}")
    return value


def _decode_key(value: Any) -> Key:
    if isinstance(value, dict):
        when = datetime.fromisoformat(str(value["t"]))
        if when.tzinfo is None:
            raise ValueError("naive datetime")
        return when
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("position value")
    return value


def _is(value: Key, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)
