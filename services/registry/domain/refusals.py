"""Handshake refusals kept as evidence, and the bounds that keep the evidence small.

Every handshake the registry refuses (see `authentication`) is recorded once per
(name, instance uid, reason): the first and last time, how often, from which address,
and the message the collector was sent. `outpostctl collectors explain` turns these into
findings, so an operator can see why a collector never shows up without reading gateway
logs. Anyone who can reach a gateway can make the registry refuse a handshake under any
name and uid, so the table is bounded: rows unheard of for `REFUSAL_RETENTION` are
deleted, and beyond `MAX_REFUSALS` rows the least recently refused go first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_REFUSALS = 1000
"""Rows kept at most; an attacker inventing identities only pushes out the oldest ones."""

REFUSAL_RETENTION = timedelta(days=30)
"""A refusal not repeated for this long is forgotten."""

EXPLAIN_REFUSALS = 200
"""Most recent rows `explain` reads for one name: enough evidence, bounded work."""


@dataclass(frozen=True)
class HandshakeRefusal:
    """One kind of refusal of one identity under one name, aggregated over time.

    `reason` is an `authentication.Refusal` value, kept as text so a row written by a
    newer registry replica still reads.
    """

    name: str
    instance_uid: str
    fingerprint: str
    remote_address: str
    reason: str
    message: str
    first_at: datetime
    last_at: datetime
    count: int = 1
