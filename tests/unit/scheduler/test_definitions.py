"""Validating discoveries, schedules and settings, and a schedule's evaluation cursor."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from outpost import errors
from services.scheduler.domain import schedules as schedule_rules
from services.scheduler.domain import settings as settings_rules
from services.scheduler.domain.discoveries import (
    Discovery,
    from_snapshot,
    snapshot,
    validate_discovery,
)
from services.scheduler.domain.schedules import MissedRunPolicy
from services.scheduler.domain.settings import Settings

NOW = datetime(2025, 6, 1, 12, 0, 20, tzinfo=UTC)


def discovery(**changes: Any) -> Discovery:
    base = Discovery(name="dmz-sweep", targets=("10.0.0.0/24",), zone="dmz", ports=(22,), concurrency=0, timeout_ms=0)
    return replace(base, **({"deadline_seconds": 0} | changes))


def test_zero_limits_become_the_defaults() -> None:
    d = validate_discovery(discovery(), NOW)
    assert (d.concurrency, d.rate_per_second, d.timeout_ms, d.deadline_seconds) == (256, 0, 1000, 3600)
    assert d.created_at == NOW


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"collector": "edge-7"}, "exactly one of collector or zone.*both"),
        ({"zone": ""}, "exactly one of collector or zone.*neither"),
        ({"targets": ()}, "at least one target"),
        ({"targets": ("10.0.0.0/33",)}, "target '10.0.0.0/33' is not a valid CIDR"),
        ({"targets": ("10.0.0.9-10.0.0.1",)}, "ends before it starts: write 10.0.0.1-10.0.0.9"),
        ({"exclusions": ("10.0.0.1-::1",)}, "exclusion '10.0.0.1-::1' mixes IPv4 and IPv6"),
        ({"targets": ("bad host!",)}, "is not an address, a CIDR"),
        ({"targets": ("10.0.0.7/24",)}, r"has host bits set: did you mean 10.0.0.0/24\?"),
        ({"targets": ("127.0.0.0/8",)}, "expand to 16,777,216 addresses; a discovery scans at most 1,048,576"),
        (
            {"targets": ("10.0.0.0/12",), "exclusions": ("10.0.0.0/13",), "ports": ()},
            "tcp probe needs at least one port",
        ),
        ({"targets": tuple(f"10.0.{i // 256}.{i % 256}" for i in range(10_001))}, "at most 10,000 together"),
        ({"ports": (0, 22)}, "port 0 is outside 1-65535"),
        ({"probes": ("icmp", "telnet")}, "unknown probe.*telnet"),
        ({"concurrency": 70_000}, "concurrency must be between 1 and 65535"),
        ({"deadline_seconds": 30 * 86_400}, "deadline_seconds must be between"),
        ({"dns_resolver": "10.0.0.53"}, "dns_resolver must be host:port"),
        ({"name": "no spaces please"}, "discovery name 'no spaces please' is not allowed"),
        ({"name": ""}, "a discovery name is required"),
    ],
)
def test_a_bad_discovery_is_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        validate_discovery(discovery(**changes), NOW)


@pytest.mark.parametrize(
    ("target", "stored"),
    [
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.5", "10.0.0.5"),
        ("10.0.0.5-10.0.0.20", "10.0.0.5-10.0.0.20"),
        ("10.0.0.5-20", "10.0.0.5-10.0.0.20"),
        ("2001:DB8::/120", "2001:db8::/120"),
        ("fe80::1-fe80::9", "fe80::1-fe80::9"),
        ("core-sw1.lan", "core-sw1.lan"),
        ("::ffff:127.0.50.1", "127.0.50.1"),
        ("::ffff:127.0.50.0/120", "127.0.50.0/24"),
    ],
)
def test_cidrs_ranges_addresses_and_host_names_are_stored_canonical(target: str, stored: str) -> None:
    assert validate_discovery(discovery(targets=(target,)), NOW).targets == (stored,)


def test_a_huge_name_gets_the_naming_rule_without_being_echoed() -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        validate_discovery(discovery(name="a" * 10_000), NOW)
    message = str(info.value)
    assert "at most 128 characters" in message and "(10,000 characters)" in message
    assert len(message) < 300


def test_a_snapshot_round_trips_through_json_data() -> None:
    d = validate_discovery(discovery(ports=(443, 22, 22), probes=("tcp", "snmp"), snmp_credential="ro"), NOW)
    assert d.ports == (22, 443)
    assert from_snapshot(snapshot(d)) == d
    assert from_snapshot(snapshot(d)).created_at == NOW


def new_schedule(**changes: Any) -> schedule_rules.Schedule:
    fields: dict[str, Any] = {
        "name": "nightly",
        "discovery": "dmz-sweep",
        "minute": "*/5",
        "hour": "",
        "day_of_month": "",
        "month": "",
        "day_of_week": "",
        "timezone": "Europe/Berlin",
        "enabled": True,
        "missed_run_policy": None,
        "now": NOW,
    }
    return schedule_rules.new_schedule(**(fields | changes))


def test_a_new_schedule_starts_evaluating_at_its_creation() -> None:
    s = new_schedule()
    assert (s.last_evaluated_at, s.next_due_at) == (NOW, datetime(2025, 6, 1, 12, 5, tzinfo=UTC))
    assert s.missed_run_policy is MissedRunPolicy.RUN_ONCE
    assert new_schedule(enabled=False).next_due_at is None


def test_evaluation_yields_only_the_newest_due_minute_and_the_next_one() -> None:
    s = new_schedule()
    evaluation = schedule_rules.plan_evaluation(s, NOW + timedelta(minutes=17))
    assert evaluation.due_at == datetime(2025, 6, 1, 12, 15, tzinfo=UTC)
    assert evaluation.next_due_at == datetime(2025, 6, 1, 12, 20, tzinfo=UTC)


def test_enabling_again_does_not_back_fill_the_disabled_time() -> None:
    s = new_schedule()
    disabled = schedule_rules.set_enabled(s, False, NOW)
    assert disabled is not None and disabled.next_due_at is None
    assert schedule_rules.set_enabled(disabled, False, NOW) is None  # idempotent
    later = NOW + timedelta(hours=3)
    enabled = schedule_rules.set_enabled(disabled, True, later)
    assert enabled is not None
    assert enabled.last_evaluated_at == later
    assert schedule_rules.plan_evaluation(enabled, later + timedelta(seconds=1)).due_at is None


def test_settings_change_only_the_named_fields_within_range() -> None:
    current = Settings()
    assert settings_rules.apply_changes(current, Settings(collector_check_minutes=15), ["collector_check_minutes"]) == (
        Settings(collector_check_minutes=15)
    )
    with pytest.raises(errors.InvalidArgument, match="name the settings to change"):
        settings_rules.apply_changes(current, Settings(collector_check_minutes=15), [])
    with pytest.raises(errors.InvalidArgument, match=r"unknown setting.*poll_seconds"):
        settings_rules.apply_changes(current, current, ["poll_seconds"])
    for bad in (0, 1441):
        with pytest.raises(errors.InvalidArgument, match="between 1 and 1440"):
            settings_rules.apply_changes(current, Settings(collector_check_minutes=bad), ["collector_check_minutes"])
    assert Settings.from_values({"collector_check_minutes": "9", "future_key": "x"}) == Settings(9)
