"""What outpostctl prints: enum words, JSON shapes, durations, relative times, progress."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console, Group

from outpost.agent.v1 import agent_pb2
from outpost.gateway.v1 import gateway_pb2
from outpost.registry.v1 import registry_pb2
from outpost.scheduler.v1 import scheduler_pb2
from outpostctl import output
from outpostctl.devices import device_sections
from outpostctl.gateway_client import DeviceDetail, _device
from outpostctl.job_wait import progress_label
from outpostctl.jobs import JobState, progress_text, run_seconds, trigger_text
from outpostctl.registry_client import credential_type_name
from outpostctl.scheduler_client import (
    JOB_STATES,
    TERMINAL_STATES,
    Discovery,
    JobRun,
    _discovery,
    _discovery_message,
    _job_run,
    job_state_name,
    missed_policy_name,
)

T0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def stamp(when: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(when)
    return result


RUN = _job_run(
    scheduler_pb2.JobRun(
        id="r-1", discovery="lab", trigger="manual", state=agent_pb2.JOB_STATE_RUNNING, target_zone="lab"
    )
)


def run(**changes: object) -> JobRun:
    return dataclasses.replace(RUN, **changes)  # type: ignore[arg-type]


def test_job_states_are_the_lowercase_words_of_the_contract() -> None:
    names = [job_state_name(v) for v in agent_pb2.JobState.values() if v != agent_pb2.JOB_STATE_UNSPECIFIED]
    assert tuple(names) == JOB_STATES
    assert [s.value for s in JobState] == list(JOB_STATES)
    assert {"succeeded", "failed", "timed_out", "cancelled"} == TERMINAL_STATES


def test_an_enum_value_this_client_does_not_know_shows_as_its_number() -> None:
    assert job_state_name(99) == "99"
    assert missed_policy_name(99) == "99"
    assert credential_type_name(99) == "99"


def test_missed_run_policies_and_credential_types_read_as_typed() -> None:
    assert missed_policy_name(scheduler_pb2.MISSED_RUN_POLICY_SKIP) == "skip"
    assert missed_policy_name(scheduler_pb2.MISSED_RUN_POLICY_RUN_ONCE) == "run-once"
    assert missed_policy_name(scheduler_pb2.MISSED_RUN_POLICY_UNSPECIFIED) == ""
    assert credential_type_name(registry_pb2.CREDENTIAL_TYPE_SNMP_V2C) == "snmp-v2c"
    assert credential_type_name(registry_pb2.CREDENTIAL_TYPE_SNMP_V3) == "snmp-v3"
    assert credential_type_name(registry_pb2.CREDENTIAL_TYPE_SSH) == "ssh"


def test_discovery_probe_ports_travel_both_ways_and_zero_means_standard() -> None:
    sent = Discovery(name="lab", targets=["10.0.0.0/24"], exclusions=[], ports=[22], probes=[], zone="lab")
    assert (_discovery_message(sent).snmp_port, _discovery_message(sent).ssh_port) == (0, 0)
    custom = dataclasses.replace(sent, snmp_port=1161, ssh_port=2222)
    message = _discovery_message(custom)
    assert (message.snmp_port, message.ssh_port) == (1161, 2222)
    assert _discovery(message) == custom
    shown = output.plain(custom)
    assert (shown["snmp_port"], shown["ssh_port"]) == (1161, 2222)
    assert list(shown)[-3:] == ["snmp_port", "ssh_port", "created_at"]


def test_job_run_json_starts_with_the_promised_keys() -> None:
    message = scheduler_pb2.JobRun(id="r-1", state=agent_pb2.JOB_STATE_TIMED_OUT, finished_at=stamp(T0))
    plain = output.plain(_job_run(message))
    promised = [
        "id",
        "discovery",
        "schedule",
        "trigger",
        "state",
        "collector",
        "targets_done",
        "targets_total",
        "devices_found",
        "reason",
        "due_at",
        "created_at",
        "started_at",
        "finished_at",
    ]
    assert list(plain)[: len(promised)] == promised
    assert plain["state"] == "timed_out"
    assert plain["finished_at"] == "2026-11-24T04:00:00Z"
    assert plain["started_at"] is None


def test_device_json_has_open_ports_and_services() -> None:
    message = gateway_pb2.Device(ip="10.0.0.9", zone="lab", hostname="sw-9", facts={"b": "2", "a": "1"})
    message.ports.add(port=443, protocol="tcp", service="https", details={"tls.subject": "CN=sw"})
    message.ports.add(port=22, protocol="tcp", service="ssh", banner="SSH-2.0-OpenSSH_9.6")
    message.ports.add(port=22, protocol="udp")
    message.ports.add(port=25, protocol="tcp", state="filtered")
    message.ports.add(port=23, protocol="tcp", state="closed")
    plain = output.plain(_device(message))
    assert list(plain)[:9] == [
        "ip",
        "zone",
        "hostname",
        "open_ports",
        "services",
        "mac_addresses",
        "facts",
        "first_seen",
        "last_seen",
    ]
    assert plain["open_ports"] == [22, 443]
    assert [(s["port"], s["protocol"], s["state"]) for s in plain["services"]] == [
        (22, "tcp", "open"),
        (22, "udp", "open"),
        (23, "tcp", "closed"),
        (25, "tcp", "filtered"),
        (443, "tcp", "open"),
    ]
    assert plain["services"][1] == {
        "port": 22,
        "protocol": "udp",
        "state": "open",
        "service": "",
        "banner": "",
        "details": {},
        "first_seen": None,
        "last_seen": None,
    }
    assert list(plain["facts"]) == ["a", "b"]


def test_device_show_lists_every_known_port_with_its_state() -> None:
    message = gateway_pb2.Device(ip="10.0.0.9", zone="lab")
    message.ports.add(port=22, protocol="tcp", service="ssh", state="open")
    message.ports.add(port=8080, protocol="tcp", service="http", state="filtered")
    message.ports.add(port=23, protocol="tcp", state="closed")
    console = Console(record=True, width=200)
    console.print(Group(*device_sections(DeviceDetail(_device(message), []))))
    text = console.export_text()

    assert re.search(r"^open ports\s+22\s*$", text, re.MULTILINE)
    assert re.search(r"^PORT\s+PROTO\s+STATE\s+SERVICE", text, re.MULTILINE)
    rows = [line.split()[:3] for line in text.splitlines() if re.match(r"^\d+\s+tcp", line)]
    assert rows == [["22", "tcp", "open"], ["23", "tcp", "closed"], ["8080", "tcp", "filtered"]]


def test_run_duration_is_start_to_finish_or_to_now() -> None:
    assert run_seconds(run(started_at=None)) is None
    assert run_seconds(run(started_at=T0, finished_at=T0 + timedelta(seconds=72))) == 72
    assert run_seconds(run(started_at=T0), now=T0 + timedelta(seconds=5)) == 5


def test_progress_shows_the_total_once_known() -> None:
    assert progress_text(run()) == "-"
    assert progress_text(run(targets_done=12)) == "12/?"
    assert progress_text(run(targets_done=12, targets_total=254)) == "12/254"


def test_trigger_names_the_schedule() -> None:
    assert trigger_text(run()) == "manual"
    assert trigger_text(run(schedule="nightly", trigger="schedule")) == "schedule nightly"


@pytest.mark.parametrize(
    ("changes", "label"),
    [
        ({"state": "queued", "target_zone": "lab"}, "queued for zone lab"),
        ({"state": "queued", "target_zone": "", "target_collector": "edge-1"}, "queued for collector edge-1"),
        ({"state": "dispatched", "collector": "edge-1"}, "dispatched to edge-1"),
        ({"state": "running", "collector": "edge-\x1b[2J"}, "running on edge-\\x1b[2J"),
        ({"state": "succeeded", "collector": "edge-1"}, "succeeded"),
    ],
)
def test_progress_label_says_what_the_run_is_doing(changes: dict[str, object], label: str) -> None:
    assert progress_label(run(**changes)) == label


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-1, "-"),
        (0.44, "0.4s"),
        (9.96, "10s"),
        (12, "12s"),
        (65, "1m 05s"),
        (7380, "2h 03m"),
        (273600, "3d 04h"),
    ],
)
def test_durations_read_at_a_glance(seconds: float | None, text: str) -> None:
    assert output.duration(seconds) == text


def test_future_times_read_as_in_and_past_as_ago() -> None:
    assert output.until(T0 + timedelta(seconds=42), T0) == "in 42s"
    assert output.until(T0 + timedelta(hours=3, minutes=5), T0) == "in 3h"
    assert output.until(T0 + timedelta(days=40), T0) == "2027-01-03"
    assert output.until(T0 - timedelta(minutes=5), T0) == "5m ago"
    assert output.moment(T0 + timedelta(minutes=5), T0) == "2026-11-24T04:05:00Z (in 5m)"
    assert output.moment(None, T0) == "never"
