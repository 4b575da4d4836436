"""The pending bounds, pure: source networks, room for one more, and the evidence budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.registry.app import parse_config
from services.registry.domain.pending_limits import (
    UNKNOWN_NETWORK,
    EvidenceBudget,
    PendingCounts,
    PendingLimits,
    check_pending_room,
    source_network,
)

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("remote", "network"),
    [
        ("203.0.113.9:40000", "203.0.113.0/24"),
        ("203.0.113.250:1", "203.0.113.0/24"),
        ("203.0.114.9:40000", "203.0.114.0/24"),
        ("203.0.113.9", "203.0.113.0/24"),
        ("[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6:443", "2001:db8:1:2::/64"),  # v6 with a port, no brackets
        ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7:5000", "198.51.100.0/24"),  # IPv4-mapped counts as IPv4
        ("[fe80::1%eth0]:5000", "fe80::/64"),
        ("unknown", UNKNOWN_NETWORK),
        ("", UNKNOWN_NETWORK),
    ],
)
def test_source_network_buckets_ipv4_by_24_and_ipv6_by_64(remote: str, network: str) -> None:
    assert source_network(remote) == network


def test_a_newcomer_is_refused_when_the_pending_list_is_full() -> None:
    limits = PendingLimits(max_pending=3, max_per_network=10)
    counts = PendingCounts.of(["192.0.2.1:1", "198.51.100.1:1", "203.0.113.1:1"])

    refusal = check_pending_room(limits, counts, "100.64.0.0/24")

    assert refusal is not None and refusal.scope == "total"
    assert "--max-pending is 3" in refusal.message and "an admin must register or remove some" in refusal.message
    assert refusal.retry_after_seconds > 0


def test_a_newcomer_is_refused_when_its_network_has_too_many_pending_but_others_are_not() -> None:
    limits = PendingLimits(max_pending=100, max_per_network=2)
    counts = PendingCounts.of(["203.0.113.1:1", "203.0.113.2:2", "198.51.100.1:1"])

    refusal = check_pending_room(limits, counts, "203.0.113.0/24")

    assert refusal is not None and refusal.scope == "network"
    assert refusal.message.startswith("too many collectors waiting for registration from 203.0.113.0/24")
    assert "an admin must register or remove some" in refusal.message
    assert check_pending_room(limits, counts, "198.51.100.0/24") is None
    assert check_pending_room(limits, counts.plus("198.51.100.0/24"), "198.51.100.0/24") is not None


def test_the_evidence_budget_allows_a_burst_then_refills_with_time() -> None:
    budget = EvidenceBudget(per_minute=3)
    assert [budget.allow(T0) for _ in range(4)] == [True, True, True, False]
    assert not budget.allow(T0 + timedelta(seconds=10))  # half a token
    assert budget.allow(T0 + timedelta(seconds=20))
    assert [budget.allow(T0 + timedelta(hours=1)) for _ in range(4)] == [True, True, True, False]


def test_the_pending_bounds_come_from_flags_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_config([]).pending_limits == PendingLimits(max_pending=1000, max_per_network=100)
    monkeypatch.setenv("OUTPOST_REGISTRY_MAX_PENDING", "50")
    monkeypatch.setenv("OUTPOST_REGISTRY_MAX_PENDING_PER_NETWORK", "7")
    assert parse_config([]).pending_limits == PendingLimits(max_pending=50, max_per_network=7)
    flagged = parse_config(["--max-pending", "9", "--max-pending-per-network", "3"])
    assert flagged.pending_limits == PendingLimits(max_pending=9, max_per_network=3)


def test_a_pending_bound_that_is_not_a_positive_number_stops_the_registry() -> None:
    with pytest.raises(SystemExit):
        parse_config(["--max-pending", "0"])
