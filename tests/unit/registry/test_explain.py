"""`explain_collector`: which findings, how severe, and which one becomes the summary."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.registry.domain.collectors import Collector, CollectorState, SpoolStatus
from services.registry.domain.explain import (
    Code,
    Explanation,
    ServerSettings,
    Severity,
    explain_collector,
)
from services.registry.domain.refusals import HandshakeRefusal

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
INTERVAL = 30
SETTINGS = ServerSettings(server_instance="srv-A", version="1.4.2", heartbeat_interval_seconds=INTERVAL)
LIVE = Collector(
    instance_uid="uid-7",
    name="edge-7",
    zone="dmz",
    version="1.4.2",
    username="svc",
    password_verifier="",
    public_key=b"k" * 32,
    fingerprint="SHA256:seven",
    state=CollectorState.ENABLED,
    first_seen=NOW - timedelta(days=3),
    last_seen=NOW - timedelta(seconds=10),
    connected=True,
    reported_at=NOW - timedelta(seconds=10),
    gateway_id="gw-1",
    transport="grpc",
    remote_address="198.51.100.7:50123",
    state_changed_by="alice",
    state_changed_at=NOW - timedelta(days=2),
)


def collector(**changes: object) -> Collector:
    return replace(LIVE, **changes)  # type: ignore[arg-type]


def refusal(
    reason: str = "authentication_failed",
    *,
    uid: str = "uid-7",
    name: str = "edge-7",
    ago: timedelta = timedelta(seconds=5),
    count: int = 1,
    address: str = "203.0.113.5:40000",
    message: str = "public key does not match the one on record for collector 'edge-7'",
) -> HandshakeRefusal:
    return HandshakeRefusal(
        name=name,
        instance_uid=uid,
        fingerprint=f"SHA256:{uid}",
        remote_address=address,
        reason=reason,
        message=message,
        first_at=NOW - ago - timedelta(minutes=1),
        last_at=NOW - ago,
        count=count,
    )


def explain(c: Collector | None, *refusals: HandshakeRefusal, name: str = "edge-7") -> Explanation:
    return explain_collector(name, c, refusals, SETTINGS, NOW)


def codes(explanation: Explanation) -> list[tuple[str, str]]:
    return [(f.code.value, f.severity.value) for f in explanation.findings]


def only(explanation: Explanation, code: Code) -> str:
    found = [f for f in explanation.findings if f.code is code]
    assert len(found) == 1, codes(explanation)
    return found[0].message


# --- live, online, offline --------------------------------------------------------------
def test_online_and_enabled_is_live_with_where_it_is_connected() -> None:
    explained = explain(LIVE)

    assert explained.live
    assert codes(explained) == [("live", "ok")]
    assert explained.summary == "edge-7 is live"
    assert only(explained, Code.LIVE) == (
        "online and enabled: last heard 10 s ago via gateway gw-1 (grpc from 198.51.100.7:50123)"
    )


def test_information_does_not_change_a_live_summary_but_a_warning_does() -> None:
    patch_behind = explain(collector(version="1.4.1"))
    release_behind = explain(collector(version="1.3.9"))

    assert patch_behind.summary == "edge-7 is live"
    assert ("version", "info") in codes(patch_behind)
    assert ("version", "warning") in codes(release_behind)
    assert release_behind.summary == "edge-7 is live, but it runs version 1.3.9; the server runs 1.4.2"


def test_a_gateway_that_stopped_reporting_leaves_its_collectors_offline() -> None:
    stale = collector(last_seen=NOW - timedelta(minutes=5), reported_at=NOW - timedelta(minutes=5))

    explained = explain(stale)

    assert not explained.live
    assert codes(explained) == [("offline", "error")]
    message = only(explained, Code.OFFLINE)
    assert message == (
        "offline: last heard 5 min ago via gateway gw-1 (grpc from 198.51.100.7:50123); "
        "that gateway last reported 5 min ago"
    )
    assert explained.findings[0].at == NOW - timedelta(minutes=5)
    assert "check that gateway gw-1 runs" in explained.findings[0].advice
    assert explained.summary == f"edge-7 is not live: {message}"


def test_a_gateway_still_holding_a_silent_session_points_at_the_link() -> None:
    silent = collector(last_seen=NOW - timedelta(seconds=61), reported_at=NOW - timedelta(seconds=5))

    message = only(explain(silent), Code.OFFLINE)

    assert message.startswith("offline: gateway gw-1 still holds its session but has heard nothing")
    assert "(60 s)" in message


def test_a_polling_collector_between_check_ins_is_live_and_says_how_often_it_checks_in() -> None:
    polling = collector(transport="http_poll", check_in_seconds=300, last_seen=NOW - timedelta(minutes=4))

    explained = explain(polling)

    assert explained.live
    assert only(explained, Code.LIVE) == (
        "online and enabled: last heard 4 min ago via gateway gw-1 (http_poll from 198.51.100.7:50123); "
        "it polls, checking in every 5 min"
    )


def test_a_polling_collector_that_missed_its_check_in_is_offline_with_the_window_it_missed() -> None:
    late = collector(
        transport="http_poll",
        check_in_seconds=300,
        last_seen=NOW - timedelta(seconds=361),
        reported_at=NOW - timedelta(seconds=5),
    )

    explained = explain(late)

    assert not explained.live
    message = only(explained, Code.OFFLINE)
    assert "its check-in interval plus 2 heartbeat intervals (300 + 60 = 360 s)" in message
    assert "two check-in intervals without a poll" in explained.findings[0].advice


def test_an_ended_session_shows_its_last_error_and_when() -> None:
    ended = collector(
        connected=False,
        last_seen=NOW - timedelta(minutes=3),
        last_error="heartbeat timeout",
        last_error_at=NOW - timedelta(minutes=2),
    )

    explained = explain(ended)

    assert codes(explained) == [("offline", "error"), ("last_error", "warning")]
    assert only(explained, Code.OFFLINE).startswith("offline: its session ended; last heard 3 min ago")
    assert explained.findings[1].at == NOW - timedelta(minutes=2)
    assert explained.findings[1].message == "last error: heartbeat timeout"


def test_the_last_error_of_an_online_collector_is_history_and_not_shown() -> None:
    assert codes(explain(collector(last_error="old trouble", last_error_at=NOW - timedelta(days=1)))) == [
        ("live", "ok")
    ]


# --- what the admin decided -------------------------------------------------------------
def test_pending_says_how_to_register_even_while_online() -> None:
    explained = explain(collector(state=CollectorState.PENDING))

    assert not explained.live
    assert codes(explained) == [("pending", "warning"), ("online", "info")]
    assert explained.summary.startswith("edge-7 is not live: pending since its first contact 3 d ago")
    assert "outpostctl collectors register edge-7" in explained.findings[0].advice
    assert "SHA256:seven" in explained.findings[0].advice


def test_disabled_says_by_whom_when_and_why_and_outranks_being_offline() -> None:
    disabled = collector(
        state=CollectorState.DISABLED,
        state_reason="maintenance window",
        state_changed_by="bob",
        state_changed_at=NOW - timedelta(hours=3),
        connected=False,
    )

    explained = explain(disabled)

    assert codes(explained) == [("disabled", "warning"), ("offline", "warning")]
    assert explained.summary == "edge-7 is not live: disabled by bob 3 h ago: maintenance window"
    assert explained.findings[0].at == NOW - timedelta(hours=3)
    assert "outpostctl collectors enable edge-7" in explained.findings[0].advice


# --- names never seen -------------------------------------------------------------------
def test_an_unknown_name_says_what_to_check() -> None:
    explained = explain(None, name="edge-9")

    assert (explained.live, explained.collector) == (False, None)
    assert codes(explained) == [("never_connected", "error")]
    advice = explained.findings[0].advice
    assert all(word in advice for word in ("--server", "srv-A", "log", "firewall"))


def test_an_unknown_name_lists_the_refusals_under_it_recent_as_errors_old_as_history() -> None:
    explained = explain(
        None,
        refusal("bound_to_other_instance", uid="uid-9", name="edge-9", count=4, message="bound to srv-B"),
        refusal("authentication_failed", uid="uid-9", name="edge-9", ago=timedelta(days=3)),
        name="edge-9",
    )

    assert codes(explained) == [("never_connected", "error"), ("bound_elsewhere", "error"), ("auth_refused", "info")]
    assert "5 handshakes under this name were refused" in explained.findings[0].message
    assert "srv-A" in explained.findings[1].advice


def test_a_collector_refused_for_the_pending_bound_is_told_to_make_room_not_to_reinstall() -> None:
    message = (
        "too many collectors waiting for registration from 203.0.113.0/24 (100, the registry's "
        "--max-pending-per-network is 100); an admin must register or remove some"
    )
    explained = explain(None, refusal("pending_limit", uid="uid-9", name="edge-9", message=message), name="edge-9")

    assert codes(explained) == [("never_connected", "error"), ("pending_limit", "error")]
    finding = explained.findings[1]
    assert "from 203.0.113.0/24" in finding.message
    assert "never accepted" in finding.advice and "register" in finding.advice and "remove" in finding.advice
    assert "--max-pending" in finding.advice and "reinstall" not in finding.advice


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("handshake proof did not verify", ("never accepted", "version", "proxy", "RATE_LIMITED")),
        (
            "collector 'edge-9' sent an unacceptable password verifier: argon2id memory cost too high",
            ("never accepted", "upgrade", "RATE_LIMITED"),
        ),
        ("something new", ("never accepted", "log")),
    ],
)
def test_a_collector_never_accepted_gets_advice_for_why_it_was_refused_not_reinstall_advice(
    message: str, words: tuple[str, ...]
) -> None:
    explained = explain(None, refusal(uid="uid-9", name="edge-9", message=message), name="edge-9")

    advice = next(f.advice for f in explained.findings if f.code is Code.AUTH_REFUSED)
    assert all(word in advice for word in words), advice
    assert "was reinstalled" not in advice and "accepted before" not in advice


def test_a_known_collector_refused_for_its_key_still_gets_the_reinstall_advice() -> None:
    offline = collector(connected=False, last_seen=NOW - timedelta(minutes=10))
    explained = explain(offline, refusal())

    advice = next(f.advice for f in explained.findings if f.code is Code.AUTH_REFUSED)
    assert "accepted before" in advice and "reinstalled" in advice


def test_a_registered_collector_refused_for_its_password_is_told_to_fix_its_password_file() -> None:
    offline = collector(connected=False, last_seen=NOW - timedelta(minutes=10))
    message = "service password does not match the one on record for collector 'edge-7'; fix its --password-file"
    explained = explain(offline, refusal(message=message))

    advice = next(f.advice for f in explained.findings if f.code is Code.AUTH_REFUSED)
    assert "--password-file" in advice and "set-password" in advice and "no restart" in advice
    assert "reinstalled" not in advice


# --- refused handshakes of this collector and of others ---------------------------------
def test_refusals_after_the_last_contact_are_why_it_is_offline() -> None:
    refused = refusal(count=3)
    offline = collector(connected=False, last_seen=NOW - timedelta(minutes=10), last_error=refused.message)

    explained = explain(offline, refused)

    assert codes(explained) == [("auth_refused", "error"), ("offline", "error")]  # the error is not repeated
    message = explained.findings[0].message
    assert message == (
        "its handshakes refused 3 times, last 5 s ago from 203.0.113.5:40000: "
        "public key does not match the one on record for collector 'edge-7'"
    )
    assert explained.summary == f"edge-7 is not live: {message}"
    assert "outpostctl collectors remove edge-7" in explained.findings[0].advice


@pytest.mark.parametrize(
    ("last_seen_ago", "refused_ago", "severity"),
    [
        (timedelta(seconds=1), timedelta(minutes=5), Severity.INFO),  # it got in after: history
        (timedelta(seconds=20), timedelta(seconds=5), Severity.WARNING),  # a second copy while online
    ],
)
def test_refusals_of_a_collector_that_is_online(
    last_seen_ago: timedelta, refused_ago: timedelta, severity: Severity
) -> None:
    explained = explain(collector(last_seen=NOW - last_seen_ago), refusal(ago=refused_ago))

    assert explained.live
    assert (Code.AUTH_REFUSED.value, severity.value) in codes(explained)


def test_other_installations_claiming_the_name_are_aggregated_into_one_warning() -> None:
    claims = [
        refusal("name_conflict", uid=f"uid-{i}", ago=timedelta(minutes=i), address=f"192.0.2.{i}:1") for i in (1, 2, 3)
    ]

    explained = explain(LIVE, *claims)

    assert codes(explained) == [("name_conflict", "warning"), ("live", "ok")]
    message = explained.findings[0].message
    assert message.startswith("handshakes from 3 other installations (last SHA256:uid-1) refused 3 times")
    assert "from 192.0.2.1:1" in message
    assert "outpostctl collectors conflicts" in explained.findings[0].advice
    assert explained.summary == f"edge-7 is live, but {message}"


def test_old_claims_by_others_are_history() -> None:
    old = refusal("name_conflict", uid="uid-x", ago=timedelta(days=2))
    assert codes(explain(LIVE, old)) == [("name_conflict", "info"), ("live", "ok")]


def test_a_refusal_reason_this_version_does_not_know_is_still_shown() -> None:
    explained = explain(None, refusal("quota_exceeded", uid="uid-9", name="edge-9"), name="edge-9")
    assert ("refused", "error") in codes(explained)


# --- clock and spool --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("skew_ms", "message"),
    [
        (None, None),
        (5000, None),
        (-5000, None),
        (5001, "its clock is 5.0 s ahead of the gateway's"),
        (-72_500, "its clock is 72.5 s behind the gateway's"),
    ],
)
def test_clock_skew_beyond_five_seconds_is_a_warning(skew_ms: int | None, message: str | None) -> None:
    found = [f for f in explain(collector(clock_skew_ms=skew_ms)).findings if f.code is Code.CLOCK_SKEW]
    assert [(f.severity, f.message) for f in found] == ([] if message is None else [(Severity.WARNING, message)])


def test_any_spool_drop_is_an_error_with_advice_per_reason() -> None:
    spool = SpoolStatus(dropped_full=2, dropped_corrupt=1, dropped_devices=40)

    explained = explain(collector(spool=spool))

    assert explained.live
    assert codes(explained) == [("live", "ok"), ("spool_drops", "error")]
    drops = explained.findings[1]
    assert drops.message == "its spool dropped 3 result batches (2 full, 0 expired, 1 corrupt) carrying 40 devices"
    assert "--spool-max-bytes" in drops.advice and "disk" in drops.advice and "--spool-max-age" not in drops.advice
    assert explained.summary == f"edge-7 is live, but {drops.message}"


MIB = 1_048_576
WEEK = 7 * 86_400


@pytest.mark.parametrize(
    ("spool", "severity"),
    [
        (SpoolStatus(batches=2, bytes=MIB, max_bytes=256 * MIB, max_age_seconds=WEEK, oldest_at=NOW), Severity.INFO),
        (SpoolStatus(batches=900, bytes=130 * MIB, max_bytes=256 * MIB, oldest_at=NOW), Severity.WARNING),
        (
            SpoolStatus(batches=3, bytes=MIB, max_age_seconds=WEEK, oldest_at=NOW - timedelta(days=4)),
            Severity.WARNING,
        ),
    ],
)
def test_a_spool_backlog_is_a_warning_once_it_nears_a_bound(spool: SpoolStatus, severity: Severity) -> None:
    found = [f for f in explain(collector(spool=spool)).findings if f.code is Code.SPOOL_BACKLOG]
    assert [f.severity for f in found] == [severity]
    assert found[0].at == spool.oldest_at


def test_the_spool_of_an_offline_collector_is_as_of_its_last_report() -> None:
    spool = SpoolStatus(batches=5, bytes=2 * MIB, max_bytes=256 * MIB, oldest_at=NOW - timedelta(minutes=30))
    message = only(explain(collector(connected=False, spool=spool)), Code.SPOOL_BACKLOG)
    assert message == (
        "5 result batches (2.0 MiB of 256.0 MiB) wait in its spool, the oldest written 30 min ago "
        "(as of its last report)"
    )


def test_an_empty_spool_says_nothing() -> None:
    assert codes(explain(collector(spool=SpoolStatus(max_bytes=256 * MIB)))) == [("live", "ok")]
