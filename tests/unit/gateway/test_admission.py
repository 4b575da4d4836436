"""The gateway's failed-handshake limits, pure: per (address, key), per address, bounded."""

from __future__ import annotations

import pytest

from services.gateway.app import parse_args
from services.gateway.sessions.admission import Admission, FailureLedger, FailureLimits, host_of
from services.gateway.transports.grpc_stream import listener_options

NAT = "198.51.100.1"
BAD_KEY = b"\x01" * 32
GOOD_KEY = b"\x02" * 32


def admission(**limits: float) -> Admission:
    return Admission(limits=FailureLimits(**limits))  # type: ignore[arg-type]


def test_a_key_failing_repeatedly_is_blocked_but_another_key_at_the_same_address_is_not() -> None:
    gate = admission(max_per_key=3, max_per_address=100, window=60)
    for second in range(3):
        assert gate.key_blocked(NAT, BAD_KEY, float(second)) is None
        gate.record_refused(NAT, BAD_KEY, float(second))

    blocked = gate.key_blocked(NAT, BAD_KEY, 10.0)
    assert blocked is not None and blocked.scope == "key"
    assert blocked.retry_after == 50  # the window opened at 0 and ends at 60
    assert "this collector at this address" in blocked.message and "50 s" in blocked.message
    assert gate.key_blocked(NAT, GOOD_KEY, 10.0) is None
    assert gate.address_blocked(NAT, 10.0) is None


def test_a_blocked_key_is_let_in_when_its_window_ends() -> None:
    gate = admission(max_per_key=2, window=60)
    gate.record_refused(NAT, BAD_KEY, 0.0)
    gate.record_refused(NAT, BAD_KEY, 1.0)
    blocked = gate.key_blocked(NAT, BAD_KEY, 30.5)
    assert blocked is not None and blocked.retry_after == 30  # rounded up, never 0

    assert gate.key_blocked(NAT, BAD_KEY, 30.5 + blocked.retry_after) is None
    gate.record_refused(NAT, BAD_KEY, 61.0)  # a new window starts: one failure is not a block
    assert gate.key_blocked(NAT, BAD_KEY, 61.0) is None


def test_garbage_from_an_address_reaches_the_much_higher_address_ceiling() -> None:
    gate = admission(max_per_key=2, max_per_address=5, window=60)
    for _ in range(4):
        gate.record_garbage(NAT, 0.0)
    assert gate.address_blocked(NAT, 1.0) is None
    gate.record_garbage(NAT, 1.0)

    blocked = gate.address_blocked(NAT, 2.0)
    assert blocked is not None and blocked.scope == "address" and blocked.retry_after == 58
    assert gate.key_blocked(NAT, GOOD_KEY, 2.0) == blocked  # the address ceiling covers every key
    assert gate.address_blocked("198.51.100.2", 2.0) is None


def test_refusals_of_a_key_count_toward_its_address_too() -> None:
    gate = admission(max_per_key=100, max_per_address=3, window=60)
    for _ in range(3):
        gate.record_refused(NAT, BAD_KEY, 0.0)
    assert gate.address_blocked(NAT, 0.0) is not None


def test_the_ledger_forgets_the_least_recently_failed_first_and_counts_it() -> None:
    ledger = FailureLedger(limit=1, window=60, max_tracked=2)
    ledger.record("a", 0.0)
    ledger.record("b", 0.0)
    ledger.record("a", 1.0)  # a is now the most recent
    ledger.record("c", 2.0)

    assert len(ledger) == 2 and ledger.forgotten == 1
    assert ledger.retry_after("b", 3.0) == 0.0  # forgotten
    assert ledger.retry_after("a", 3.0) > 0 and ledger.retry_after("c", 3.0) > 0


def test_unauthenticated_slots_are_bounded_and_given_back() -> None:
    gate = Admission(max_unauthenticated=2)
    assert gate.try_begin() and gate.try_begin()
    assert not gate.try_begin()
    gate.end()
    assert gate.try_begin()


@pytest.mark.parametrize(
    ("remote", "host"),
    [
        ("203.0.113.7:5000", "203.0.113.7"),
        ("[2001:db8::1]:5000", "2001:db8::1"),
        ("2001:db8::1:5000", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_the_host_of_a_remote_address_drops_the_port(remote: str, host: str) -> None:
    assert host_of(remote) == host


def test_the_failure_limits_and_stream_bound_come_from_flags_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = parse_args([])
    assert defaults.failure_limits == FailureLimits(max_per_key=10, max_per_address=200, window=60.0)
    assert defaults.grpc_max_concurrent_streams == 100
    monkeypatch.setenv("OUTPOST_GATEWAY_MAX_FAILED_HANDSHAKES_PER_ADDRESS", "500")
    monkeypatch.setenv("OUTPOST_GATEWAY_GRPC_MAX_CONCURRENT_STREAMS", "8")
    flagged = parse_args(["--max-failed-handshakes", "3", "--failed-handshake-window", "30"])
    assert flagged.failure_limits == FailureLimits(max_per_key=3, max_per_address=500, window=30.0)
    assert flagged.grpc_max_concurrent_streams == 8


def test_the_public_grpc_listener_bounds_streams_and_enforces_keepalive() -> None:
    options = dict(listener_options(max_concurrent_streams=100, handshake_timeout=10.0))
    assert options["grpc.max_concurrent_streams"] == 100
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.http2.max_pings_without_data"] == 0
    assert options["grpc.server_handshake_timeout_ms"] == 10_000
    assert options["grpc.max_connection_idle_ms"] > 0
    assert "grpc.max_connection_age_ms" not in options  # it would cut long-lived collector streams
