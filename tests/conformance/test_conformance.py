"""The agent protocol as docs/protocol.md states it, checked against a live gateway over TCP.

Every test runs twice: with the project's own session code (`project_collector.py`) and
with the minimal collector written from the document alone (`minimal_collector.py`). What
the gateway must do is asserted from the wire: the envelopes it sends, their fields, and
that it closes the connection after a Disconnect. Section numbers refer to the document.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest

from tests.conformance.conftest import Target
from tests.conformance.minimal_collector import MinimalCollector, fingerprint
from tests.conformance.project_collector import ProjectCollector

USERNAME = "svc-conformance"
PASSWORD = "conformance-password-1"
ZONE = "conformance"
NONCE_WINDOW_MS = 120_000


class Driver(Protocol):
    kind: str
    pb: Any
    public_key: bytes
    hello_fields: dict[str, Any]
    challenge: Any

    def connect(self) -> None: ...
    def send_raw(self, data: bytes) -> None: ...
    def send(self, **body: Any) -> Any: ...
    def recv(self, timeout: float) -> Any: ...
    def expect(self, kind: str, timeout: float = 15.0) -> Any: ...
    def wait_closed(self, timeout: float = 10.0) -> None: ...
    def close(self) -> None: ...
    def hello(self) -> Any: ...
    def handshake(self) -> Any: ...
    def heartbeat(self) -> None: ...
    def job_update(self, **fields: Any) -> None: ...
    def result_batch(self, **fields: Any) -> None: ...


Factory = Callable[..., Driver]


@pytest.fixture(params=["project", "minimal"])
def new_collector(request: pytest.FixtureRequest, target: Target) -> Iterator[Factory]:
    made: list[Driver] = []

    def make(**overrides: Any) -> Driver:
        name = f"conf-{request.param}-{secrets.token_hex(4)}"
        cls = ProjectCollector if request.param == "project" else MinimalCollector
        driver: Driver = cls(target.url, name=name, zone=ZONE, username=USERNAME, password=PASSWORD)
        driver.hello_fields.update(overrides)
        driver.connect()
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


def disconnect_of(driver: Driver, timeout: float = 15.0) -> Any:
    """The Disconnect the gateway sends next, after which it closes the connection (§9)."""
    deadline = time.monotonic() + timeout
    while True:
        message = driver.recv(max(0.0, deadline - time.monotonic()))
        if message.WhichOneof("body") == "disconnect":
            driver.wait_closed()
            return message.disconnect
        assert message.WhichOneof("body") in ("config_update", "heartbeat_ack"), message


def idle(driver: Driver, seconds: float) -> None:
    """Keep the session alive (heartbeats on time) for `seconds`, reading what comes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            driver.recv(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return


def admin_alive(driver: Driver, target: Target, *args: str) -> str:
    """Run outpostctl while the session stays alive (heartbeats on time); its stdout.

    A loaded machine can take seconds to start outpostctl: longer than three heartbeat
    intervals of a test control plane, after which the gateway would close a silent session.
    """
    running = target.admin.background(*args)
    deadline = time.monotonic() + 60
    while not running.done():
        assert time.monotonic() < deadline, f"outpostctl {' '.join(args)} did not finish"
        idle(driver, 0.1)
    return running.result().stdout


def reason(driver: Driver, name: str) -> int:
    return int(driver.pb.DisconnectReason.Value(name))


def enabled(driver: Driver, target: Target) -> Any:
    """Handshake, then an admin registers and enables it: the Welcome on the live session."""
    assert driver.handshake().WhichOneof("body") == "pending"
    name = driver.hello_fields["name"]
    registering = target.admin.background(
        "collectors",
        "register",
        name,
        "--username",
        USERNAME,
        "--password-stdin",
        "--enable",
        "--fingerprint",
        fingerprint(driver.public_key),
        stdin=PASSWORD + "\n",
    )
    welcome = driver.expect("welcome", timeout=30).welcome
    registering.result(timeout=30)
    return welcome


# --- §4 handshake, §6 pending -------------------------------------------------------------------
def test_an_unknown_collector_is_challenged_then_held_pending(new_collector: Factory) -> None:
    driver = new_collector()
    answer = driver.handshake()
    challenge = driver.challenge
    assert len(challenge.nonce) == 32
    issued = int.from_bytes(challenge.nonce[:8], "big")
    assert abs(issued - time.time() * 1000) < NONCE_WINDOW_MS
    assert challenge.server_instance
    assert answer.WhichOneof("body") == "pending"
    assert answer.pending.fingerprint == fingerprint(driver.public_key)
    assert answer.pending.session_id
    assert answer.pending.heartbeat_interval_seconds >= 1


def test_heartbeats_are_acknowledged_while_pending(new_collector: Factory) -> None:
    driver = new_collector()
    assert driver.handshake().WhichOneof("body") == "pending"
    driver.heartbeat()
    assert driver.expect("heartbeat_ack").WhichOneof("body") == "heartbeat_ack"


def test_each_challenge_carries_a_fresh_nonce(new_collector: Factory) -> None:
    first, second = new_collector(), new_collector()
    first.handshake()
    second.handshake()
    assert first.challenge.nonce != second.challenge.nonce


# --- §6 enable by an admin, live ----------------------------------------------------------------
def test_an_admin_enabling_it_reaches_the_live_session(new_collector: Factory, target: Target) -> None:
    driver = new_collector()
    welcome = enabled(driver, target)
    assert welcome.state == driver.pb.COLLECTOR_STATE_ENABLED
    assert welcome.server_instance == driver.challenge.server_instance
    assert welcome.fingerprint == fingerprint(driver.public_key)
    driver.heartbeat()
    driver.expect("heartbeat_ack")


def test_an_admin_disabling_it_reaches_the_live_session(new_collector: Factory, target: Target) -> None:
    driver = new_collector()
    enabled(driver, target)
    name = driver.hello_fields["name"]
    disabling = target.admin.background("collectors", "disable", name, "--reason", "conformance")
    change = driver.expect("state_change", timeout=30).state_change
    disabling.result(timeout=30)
    assert change.state == driver.pb.COLLECTOR_STATE_DISABLED
    assert change.reason == "conformance"


def test_an_admin_removing_it_ends_the_session_for_good(new_collector: Factory, target: Target) -> None:
    driver = new_collector()
    assert driver.handshake().WhichOneof("body") == "pending"
    removing = target.admin.background("collectors", "remove", driver.hello_fields["name"], "--yes")
    disconnect = disconnect_of(driver, timeout=30)
    removing.result(timeout=30)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_REMOVED")
    assert not disconnect.retry


# --- §7 jobs, §8 result batches -----------------------------------------------------------------
def test_a_job_is_assigned_and_its_batch_acknowledged_after_commit(new_collector: Factory, target: Target) -> None:
    driver = new_collector()
    enabled(driver, target)
    name = driver.hello_fields["name"]
    ip = f"192.0.2.{10 if driver.kind == 'project' else 11}"
    admin_alive(
        driver,
        target,
        *("discoveries", "create", name, "--targets", ip, "--ports", "22", "--probes", "tcp", "--collector", name),
    )
    started = target.admin.background("discoveries", "run", name, "--json")
    assignment = driver.expect("job_assignment", timeout=30).job_assignment
    run = started.result(timeout=30)
    assert assignment.job_run_id in run.stdout
    assert list(assignment.targets) == [ip]
    assert list(assignment.ports) == [22]
    assert assignment.attempt >= 1
    run_id, attempt = assignment.job_run_id, assignment.attempt

    pb = driver.pb
    driver.job_update(job_run_id=run_id, attempt=attempt, state=pb.JOB_STATE_RUNNING, targets_total=1)
    batch = {
        "job_run_id": run_id,
        "attempt": attempt,
        "sequence": 1,
        "observed_at_unix_ms": int(time.time() * 1000),
        "devices": [
            pb.DeviceObservation(
                ip=ip,
                alive_by="tcp",
                ports=[pb.PortObservation(port=22, protocol="tcp", state=pb.PORT_STATE_OPEN)],
            )
        ],
    }
    driver.result_batch(**batch)
    ack = driver.expect("batch_ack").batch_ack
    assert (ack.job_run_id, ack.sequence, ack.attempt) == (run_id, 1, attempt)
    driver.result_batch(**batch)  # a resend (the ack was lost): acked again, stored once
    ack = driver.expect("batch_ack").batch_ack
    assert (ack.job_run_id, ack.sequence, ack.attempt) == (run_id, 1, attempt)
    driver.job_update(
        job_run_id=run_id,
        attempt=attempt,
        state=pb.JOB_STATE_SUCCEEDED,
        targets_done=1,
        targets_total=1,
        devices_found=1,
        batches_sent=1,
    )

    deadline = time.monotonic() + 30
    while json.loads(admin_alive(driver, target, "jobs", "show", run_id, "--json"))["state"] != "succeeded":
        assert time.monotonic() < deadline, "the run never became succeeded"
        idle(driver, 0.2)
    listed = json.loads(admin_alive(driver, target, "devices", "list", "--json"))
    devices = [d for d in listed if d["ip"] == ip and d["zone"] == ZONE]
    assert len(devices) == 1 and 22 in devices[0]["open_ports"]


# --- §9 disconnect reasons for bad input --------------------------------------------------------
def test_a_frame_that_is_not_an_envelope_is_malformed_frame(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send_raw(b"\x00\x00\x00\x03\x0a\x05a")  # field 1, length 5, one byte: truncated
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_MALFORMED_FRAME")
    assert disconnect.retry


def test_a_length_above_the_bound_is_frame_too_large_before_any_body(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send_raw((64 * 1024 * 1024).to_bytes(4, "big"))
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_FRAME_TOO_LARGE")


def test_an_http_request_on_the_tcp_port_is_told_so(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_FRAME_TOO_LARGE")
    assert "HTTP" in disconnect.message


def test_another_protocol_version_is_refused_without_retry(new_collector: Factory) -> None:
    driver = new_collector(protocol_version=99)
    driver.hello()
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_UNSUPPORTED_VERSION")
    assert not disconnect.retry


def test_a_hello_without_a_name_is_a_protocol_error(new_collector: Factory) -> None:
    driver = new_collector(name="")
    driver.hello()
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_PROTOCOL_ERROR")
    assert "name" in disconnect.message


def test_a_proof_before_the_hello_is_a_protocol_error(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send(proof=driver.pb.Proof(signature=bytes(64)))
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_PROTOCOL_ERROR")


def test_a_signature_over_anything_else_is_authentication_failed(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send(hello=driver.pb.Hello(**driver.hello_fields))
    challenge = driver.expect("challenge").challenge
    assert len(challenge.nonce) == 32
    driver.send(proof=driver.pb.Proof(signature=secrets.token_bytes(64)))
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_AUTHENTICATION_FAILED")
    assert disconnect.retry


def test_results_before_the_handshake_are_a_protocol_error(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send(hello=driver.pb.Hello(**driver.hello_fields))
    driver.expect("challenge")
    driver.send(result_batch=driver.pb.ResultBatch(job_run_id="x", sequence=1))
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_PROTOCOL_ERROR")


def test_a_silent_connection_is_closed_at_the_handshake_deadline(new_collector: Factory) -> None:
    driver = new_collector()
    disconnect = disconnect_of(driver, timeout=40)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_HANDSHAKE_TIMEOUT")
    assert disconnect.retry
