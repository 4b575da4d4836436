"""`collectors explain|list|show` as an operator reads them, and explain's exit status.

The registry is replaced by a fake client holding canned records, so these run without a
server; `test_registry_explain.py` covers what the real registry answers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import pytest
from typer.testing import CliRunner

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2
from outpostctl import collectors
from outpostctl.main import app
from outpostctl.registry_client import Collector, Explanation, Finding, SpoolStatus, _collector


def sample(now: datetime) -> Collector:
    """A collector record whose times are relative to `now` (the tests print "5m ago")."""
    return Collector(
        name="edge-7",
        zone="dmz",
        state="enabled",
        online=True,
        connected=True,
        fingerprint="SHA256:seven",
        last_seen=now,
        instance_uid="uid-7",
        version="1.4.2",
        remote_address="198.51.100.7:50123",
        first_seen=now - timedelta(days=3),
        registered_at=now - timedelta(days=3),
        transport="grpc",
        gateway_id="gw-1",
        state_reason="",
        state_changed_by="alice",
        username="svc",
        last_error="heartbeat timeout",
        last_error_at=now - timedelta(hours=1),
        clock_skew_ms=-7250,
        spool=SpoolStatus(
            batches=3,
            bytes=3 * 1_048_576,
            max_bytes=256 * 1_048_576,
            max_age_seconds=604_800,
            oldest=now - timedelta(minutes=5),
            dropped_full=2,
            dropped_expired=0,
            dropped_corrupt=0,
            dropped_devices=40,
        ),
    )


def live(now: datetime) -> Explanation:
    return Explanation(
        name="edge-7",
        live=True,
        summary="edge-7 is live",
        findings=[Finding("live", "ok", "online and enabled: last heard 3 s ago via gateway gw-1", None, "")],
        collector=sample(now),
    )


def offline(now: datetime) -> Explanation:
    ended = now - timedelta(minutes=3)
    return Explanation(
        name="edge-7",
        live=False,
        summary="edge-7 is not live: offline: its session ended",
        findings=[
            Finding("offline", "error", "offline: its session ended", ended, "check it runs"),
            Finding("last_error", "warning", "ended with: \x1b[2Jboom", ended, ""),
        ],
        collector=replace(sample(now), online=False, connected=False),
    )


class FakeRegistry:
    """Stands in for `RegistryClient`: answers from canned records, records nothing."""

    explanation: Explanation
    collectors: list[Collector]

    def __init__(self, endpoints: Any) -> None:
        pass

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    def explain_collector(self, name: str) -> Explanation:
        return self.explanation

    def list_collectors_page(
        self, state: str | None = None, zone: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Collector], str]:
        return self.collectors, ""

    def get_collector(self, name: str) -> Collector:
        return self.collectors[0]

    def list_name_conflicts(self) -> list[Any]:
        return []

    registered: list[dict[str, Any]] = []

    def register_collector(self, name: str, **fields: Any) -> Collector:
        self.registered.append({"name": name, **fields})
        return replace(self.collectors[0], state="enabled")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> type[FakeRegistry]:
    now = datetime.now(UTC)
    monkeypatch.setattr(FakeRegistry, "explanation", live(now), raising=False)
    monkeypatch.setattr(FakeRegistry, "collectors", [sample(now)], raising=False)
    monkeypatch.setattr(FakeRegistry, "registered", [], raising=False)
    monkeypatch.setattr(collectors, "RegistryClient", FakeRegistry)
    monkeypatch.setattr(collectors.output.stdout, "width", 200)
    return FakeRegistry


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, ["collectors", *args], input=stdin)


# --- register: the key the admin checked --------------------------------------------------
@pytest.fixture
def password_file(tmp_path: Any) -> str:
    path = tmp_path / "password"
    path.write_text("s3cret\n")
    return str(path)


def register_args(password_file: str, *extra: str) -> list[str]:
    return ["register", "edge-7", "--username", "svc", "--password-file", password_file, *extra]


def test_register_sends_the_fingerprint_given_for_the_registry_to_check(
    registry: type[FakeRegistry], password_file: str
) -> None:
    result = run(*register_args(password_file, "--fingerprint", "SHA256:seven"))

    assert result.exit_code == 0, result.output
    assert [(r["name"], r["fingerprint"], r["password"]) for r in registry.registered] == [
        ("edge-7", "SHA256:seven", "s3cret")
    ]


def test_register_on_a_terminal_shows_the_key_and_registers_it_once_confirmed(
    registry: type[FakeRegistry], password_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collectors, "_interactive", lambda: True)

    result = run(*register_args(password_file), stdin="y\n")

    assert result.exit_code == 0, result.output
    assert "SHA256:seven" in result.output and "register this key?" in result.output
    assert [r["fingerprint"] for r in registry.registered] == ["SHA256:seven"]  # bound to what was shown


def test_register_on_a_terminal_answered_no_registers_nothing(
    registry: type[FakeRegistry], password_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collectors, "_interactive", lambda: True)

    result = run(*register_args(password_file), stdin="n\n")

    assert result.exit_code == 1
    assert registry.registered == []


def test_register_without_a_terminal_or_fingerprint_works_as_before(
    registry: type[FakeRegistry], password_file: str
) -> None:
    result = run(*register_args(password_file))

    assert result.exit_code == 0, result.output
    assert "register this key?" not in result.output
    assert [r["fingerprint"] for r in registry.registered] == [""]


def test_explain_exits_0_when_live_and_prints_the_summary_first(registry: type[FakeRegistry]) -> None:
    result = run("explain", "edge-7")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "edge-7 is live"
    assert lines[1] == "OK    [live] online and enabled: last heard 3 s ago via gateway gw-1"


def test_explain_exits_3_when_not_live_with_severity_time_and_advice(
    registry: type[FakeRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "explanation", offline(datetime.now(UTC)))

    result = run("explain", "edge-7")

    assert result.exit_code == collectors.EXIT_NOT_LIVE == 3
    lines = result.output.splitlines()
    assert lines[0] == "edge-7 is not live: offline: its session ended"
    assert lines[1] == "ERROR [offline] offline: its session ended"
    assert lines[2].startswith("      at ") and lines[2].endswith("(3m ago)")
    assert lines[3] == "      advice: check it runs"
    assert lines[4] == "WARN  [last_error] ended with: \\x1b[2Jboom"  # escaped, never sent to the terminal


def test_explain_json_carries_every_finding_and_the_same_exit_status(
    registry: type[FakeRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "explanation", offline(datetime.now(UTC)))

    result = run("explain", "edge-7", "--json")

    assert result.exit_code == 3
    document = json.loads(result.output)
    assert (document["live"], document["summary"]) == (False, registry.explanation.summary)
    assert [f["code"] for f in document["findings"]] == ["offline", "last_error"]
    assert set(document["findings"][0]) == {"code", "severity", "message", "at", "advice"}
    assert document["collector"]["online"] is False


def test_list_shows_online_or_offline_from_the_registrys_verdict(
    registry: type[FakeRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = registry.collectors[0]
    stale = replace(fresh, name="edge-8", online=False, connected=True)  # its gateway died: still "connected"
    monkeypatch.setattr(registry, "collectors", [fresh, stale])

    result = run("list")

    assert result.exit_code == 0, result.output
    header, first, second = result.output.splitlines()[:3]
    assert "STATUS" in header.split() and "CONNECTED" not in header.split()
    assert first.split()[:4] == ["edge-7", "dmz", "enabled", "online"]
    assert second.split()[:4] == ["edge-8", "dmz", "enabled", "offline"]


def test_show_prints_spool_clock_skew_and_last_error(registry: type[FakeRegistry]) -> None:
    result = run("show", "edge-7")

    assert result.exit_code == 0, result.output
    shown = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in result.output.splitlines()}
    assert shown["status"] == "online"
    assert shown["clock skew"] == "-7.2 s (collector minus gateway)"
    assert shown["spool"] == "3 batches, 3.0 MiB of 256.0 MiB, oldest 5m ago"
    assert shown["spool drops"] == "2 batches (2 full, 0 expired, 0 corrupt), 40 devices"
    assert shown["last error"] == "heartbeat timeout"


def test_the_wire_collector_becomes_a_record_with_online_and_spool() -> None:
    message = registry_pb2.Collector(
        name="edge-7",
        online=True,
        connected=True,
        clock_skew_ms=1500,
        last_error="reset",
        spool=agent_pb2.SpoolStatus(batches=1, bytes=10, oldest_unix_ms=1_795_000_000_000, dropped_expired=4),
    )
    bare = _collector(registry_pb2.Collector(name="edge-8"))

    record = _collector(message)

    assert (record.online, record.clock_skew_ms, record.last_error) == (True, 1500, "reset")
    assert record.spool is not None
    assert (record.spool.batches, record.spool.dropped_expired) == (1, 4)
    assert record.spool.oldest == datetime.fromtimestamp(1_795_000_000, UTC)
    assert (bare.online, bare.spool, bare.last_error_at) == (False, None, None)
