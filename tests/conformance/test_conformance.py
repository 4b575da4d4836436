"""The agent protocol as docs/protocol.md states it, checked against a live gateway over TCP.

Every test runs twice: with the project's own session code (`project_collector.py`) and
with the minimal collector written from the document alone (`minimal_collector.py`). What
the gateway must do is asserted from the wire: the envelopes it sends, their fields, and
that it closes the connection after a Disconnect. Section numbers refer to the document.

With an access key (conftest.py) every session is sealed (§12): the handshake, records,
and the envelopes inside them, plus the sealed-only refusals (no access key, an unknown
one, a server that cannot prove the pinned key, a tampered record). Without one the
suite runs the unsealed protocol and skips the sealed-only tests with the reason.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.conformance.conftest import Target
from tests.conformance.minimal_collector import (
    AccessKey,
    MinimalCollector,
    Refused,
    ServerNotProven,
    fingerprint,
    raw_key,
    tcp_frame,
)
from tests.conformance.project_collector import ProjectCollector

USERNAME = "svc-conformance"
PASSWORD = "conformance-password-1"
ZONE = "conformance"
NONCE_WINDOW_MS = 120_000


class Driver(Protocol):
    kind: str

    @property
    def pb(self) -> Any: ...  # the generated agent_pb2 module the driver speaks

    public_key: bytes
    hello_fields: dict[str, Any]
    challenge: Any
    sealed: Any
    server_key: bytes | None
    pinned_server_key: bytes | None

    def connect(self, seal: bool = True) -> None: ...
    def seal(self, pattern_byte: int | None = None) -> None: ...
    def send_raw(self, data: bytes) -> None: ...
    def send_envelope(self, data: bytes) -> None: ...
    def send(self, **body: Any) -> Any: ...
    def refusal(self, timeout: float = 15.0) -> Any: ...
    def recv(self, timeout: float) -> Any: ...
    def expect(self, kind: str, timeout: float = 15.0) -> Any: ...
    def wait_closed(self, timeout: float = 10.0) -> None: ...
    def close(self) -> None: ...
    def hello(self) -> Any: ...
    def handshake(self) -> Any: ...
    def heartbeat(self) -> None: ...
    def key_rotation(
        self,
        new_key: Ed25519PrivateKey,
        *,
        signer: Ed25519PrivateKey | None = None,
        handshake_hash: bytes | None = None,
        prove: bool = True,
    ) -> Any: ...
    def job_update(self, **fields: Any) -> None: ...
    def result_batch(self, **fields: Any) -> None: ...


Factory = Callable[..., Driver]


@pytest.fixture(params=["project", "minimal"])
def new_collector(request: pytest.FixtureRequest, target: Target) -> Iterator[Factory]:
    made: list[Driver] = []
    default_key = object()

    def make(
        *,
        seal: bool = True,
        access_key: Any = default_key,
        pinned_server_key: bytes | None = None,
        url: str | None = None,
        **overrides: Any,
    ) -> Driver:
        """A connected collector; sealed (§12) when the target has an access key and `seal` is true."""
        name = f"conf-{request.param}-{secrets.token_hex(4)}"
        cls = ProjectCollector if request.param == "project" else MinimalCollector
        driver: Driver = cls(
            url or target.url,
            name=name,
            zone=ZONE,
            username=USERNAME,
            password=PASSWORD,
            access_key=target.access_key if access_key is default_key else access_key,
            pinned_server_key=pinned_server_key,
        )
        driver.hello_fields.update(overrides)
        made.append(driver)
        driver.connect(seal=seal)
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


def sealed_only(target: Target) -> str:
    """The target's access key, or skip naming what is missing."""
    if target.access_key is None:
        pytest.skip(f"sealed sessions (docs/protocol.md §12) not exercised: {target.why_unsealed}")
    return target.access_key


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


def test_a_registered_collector_proves_its_service_password_at_every_handshake(
    new_collector: Factory, target: Target
) -> None:
    """§4.4: the Challenge offers the credential on record; the proof answers it; a wrong
    password is AUTHENTICATION_FAILED with the reason, and nothing about the collector changes."""
    driver = new_collector()
    enabled(driver, target)
    driver.close()

    driver.connect()
    answer = driver.handshake()

    assert answer.WhichOneof("body") == "welcome", answer
    [offered] = driver.challenge.password_parameters
    assert offered.public_key == driver.public_key and len(offered.salt) >= 8
    driver.close()

    driver.password = "wrong-" + PASSWORD
    driver.connect()
    refused = driver.handshake()

    assert refused.WhichOneof("body") == "disconnect", refused
    assert refused.disconnect.reason == reason(driver, "DISCONNECT_REASON_AUTHENTICATION_FAILED")
    assert "service password does not match" in refused.disconnect.message


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
    driver.send_envelope(b"\x0a\x05a")  # field 1, length 5, one byte: truncated (sealed: inside a record)
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_MALFORMED_FRAME")
    assert disconnect.retry


def test_a_length_above_the_bound_is_frame_too_large_before_any_body(new_collector: Factory) -> None:
    driver = new_collector()
    driver.send_raw((64 * 1024 * 1024).to_bytes(4, "big"))
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_FRAME_TOO_LARGE")


def test_an_http_request_on_the_tcp_port_is_told_so(new_collector: Factory, target: Target) -> None:
    driver = new_collector(seal=False)
    driver.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    disconnect = driver.refusal() if target.access_key else disconnect_of(driver)
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


def test_a_silent_connection_is_closed_at_the_handshake_deadline(new_collector: Factory, target: Target) -> None:
    driver = new_collector(seal=False)
    disconnect = driver.refusal(timeout=40) if target.access_key else disconnect_of(driver, timeout=40)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_HANDSHAKE_TIMEOUT")
    assert disconnect.retry


# --- §12 sealed sessions ----------------------------------------------------------------------
def with_server_key(
    text: str, server_key: bytes | None, *, key_id: str | None = None, secret: bytes | None = None
) -> str:
    """The access key `text` with another server key (None: first contact), and optionally another id or secret."""
    key = AccessKey.parse(text)
    parts = [
        "outpost-ak1",
        key_id or key.key_id,
        urlsafe_b64encode(secret or key.secret).decode().rstrip("="),
    ]
    if server_key is not None:
        parts.append(urlsafe_b64encode(server_key).decode().rstrip("="))
    return ".".join(parts)


def collector_names(target: Target) -> set[str]:
    return {c["name"] for c in json.loads(target.admin.run("collectors", "list", "--json").stdout)}


def test_a_sealed_session_runs_the_pattern_the_access_key_calls_for(new_collector: Factory, target: Target) -> None:
    key = AccessKey.parse(sealed_only(target))
    driver = new_collector()
    assert driver.sealed is not None
    if key.server_key is not None:
        assert driver.server_key == key.server_key  # IK: the pinned key proved itself in message 2
    assert driver.handshake().WhichOneof("body") == "pending"  # the proof carried the channel binding


def test_first_contact_pins_the_server_key_only_after_its_first_record(new_collector: Factory, target: Target) -> None:
    key = AccessKey.parse(sealed_only(target))
    first_contact = with_server_key(target.access_key or "", None)
    try:
        driver = new_collector(access_key=first_contact)
    except Refused as refused:
        assert refused.disconnect.reason == 3  # AUTHENTICATION_FAILED: first contact is off (§12.11)
        pytest.skip(f"this gateway admits pinned (IK) collectors only: {refused.disconnect.message}")
    assert driver.pinned_server_key is None  # message 2 alone proves nothing yet (§12.11)
    assert driver.handshake().WhichOneof("body") == "pending"
    assert driver.pinned_server_key == driver.server_key
    if key.server_key is not None:
        assert driver.pinned_server_key == key.server_key
    pinned = new_collector(access_key=first_contact, pinned_server_key=driver.pinned_server_key)
    assert pinned.handshake().WhichOneof("body") == "pending"  # IK from the pin


def test_a_collector_without_an_access_key_is_refused_and_not_stored(new_collector: Factory, target: Target) -> None:
    sealed_only(target)
    driver = new_collector(access_key=None)
    driver.hello()  # a cleartext Hello: the gateway requires sealing
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_ACCESS_KEY_REFUSED")
    assert driver.hello_fields["name"] not in collector_names(target)


def test_an_unknown_access_key_is_refused_before_anything(new_collector: Factory, target: Target) -> None:
    key = AccessKey.parse(sealed_only(target))
    unknown = with_server_key(
        target.access_key or "",
        key.server_key,
        key_id=f"ak_conf_unknown_{secrets.token_hex(4)}",
        secret=secrets.token_bytes(32),
    )
    driver = new_collector(access_key=unknown, seal=False)
    with pytest.raises(Refused) as refused:
        driver.seal()
    assert refused.value.disconnect.reason == reason(driver, "DISCONNECT_REASON_ACCESS_KEY_REFUSED")
    assert driver.sealed is None


def test_another_secret_for_a_valid_key_id_never_gets_a_session(new_collector: Factory, target: Target) -> None:
    key = AccessKey.parse(sealed_only(target))
    if key.server_key is None:
        pytest.skip("needs an access key that carries the server key (IK: the PSK is checked at message 2)")
    driver = new_collector(
        access_key=with_server_key(target.access_key or "", key.server_key, secret=bytes(32)), seal=False
    )
    with pytest.raises(ServerNotProven):
        driver.seal()
    assert driver.sealed is None


def test_a_wrong_pinned_server_key_is_refused(new_collector: Factory, target: Target) -> None:
    sealed_only(target)
    wrong = raw_key(X25519PrivateKey.generate())
    driver = new_collector(access_key=with_server_key(target.access_key or "", wrong), seal=False)
    with pytest.raises(Refused) as refused:  # the gateway cannot read a message 1 made for another key
        driver.seal()
    assert refused.value.disconnect.reason == reason(driver, "DISCONNECT_REASON_AUTHENTICATION_FAILED")
    assert driver.sealed is None


def test_a_gateway_that_cannot_prove_the_pinned_key_is_refused_by_the_collector(
    new_collector: Factory, target: Target
) -> None:
    sealed_only(target)
    with Impostor() as impostor:
        driver = new_collector(seal=False, pinned_server_key=raw_key(X25519PrivateKey.generate()), url=impostor.url)
        with pytest.raises(ServerNotProven):
            driver.seal()
        assert driver.sealed is None


def test_a_truncated_message_1_is_a_malformed_frame(new_collector: Factory, target: Target) -> None:
    sealed_only(target)
    driver = new_collector(seal=False)
    driver.send_raw(tcp_frame(b"\x01" + secrets.token_bytes(40)))  # IK, but shorter than e, s and a tag
    disconnect = driver.refusal()
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_MALFORMED_FRAME")


def test_another_first_byte_is_taken_for_an_unsealed_collector_and_told_in_cleartext(
    new_collector: Factory, target: Target
) -> None:
    sealed_only(target)
    driver = new_collector(seal=False)
    driver.send_raw(tcp_frame(b"\x07" + secrets.token_bytes(100)))
    disconnect = disconnect_of(driver)  # a cleartext ServerMessage an old collector can read
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_ACCESS_KEY_REFUSED")
    assert "sealed" in disconnect.message


@pytest.mark.parametrize("tamper", ["flipped_bit", "replayed"])
def test_a_tampered_record_closes_the_session(new_collector: Factory, target: Target, tamper: str) -> None:
    sealed_only(target)
    driver = new_collector()
    assert driver.handshake().WhichOneof("body") == "pending"
    heartbeat = driver.pb.CollectorMessage(sequence=99, heartbeat=driver.pb.Heartbeat()).SerializeToString()
    [record] = driver.sealed.seal(heartbeat, time.monotonic())
    if tamper == "flipped_bit":
        driver.send_raw(tcp_frame(record[:-1] + bytes([record[-1] ^ 0x01])))
    else:
        driver.send_raw(tcp_frame(record) * 2)
    disconnect = disconnect_of(driver)
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_MALFORMED_FRAME")


class Impostor:
    """A gateway on loopback without the pinned server key: it answers message 1 with a made-up message 2."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Impostor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            length = int.from_bytes(connection.recv(4, socket.MSG_WAITALL), "big")
            connection.recv(length, socket.MSG_WAITALL)
            connection.sendall(tcp_frame(b"\x01" + secrets.token_bytes(48)))  # e and a tag it cannot compute
            connection.recv(1)  # until the collector hangs up


def created_access_key(target: Target, *args: str) -> dict[str, Any]:
    """`outpostctl access-keys create conf-… ARGS --json`: the new key (admin role needed)."""
    name = f"conf-{secrets.token_hex(4)}"
    created: dict[str, Any] = json.loads(target.admin.run("access-keys", "create", name, *args, "--json").stdout)
    return created


def once_the_gateway_knows(new_collector: Factory, access_key: str) -> Driver:
    """A sealed session with a key just created: the gateway learns of it from the registry's watch."""
    deadline = time.monotonic() + 15
    while True:
        driver = new_collector(access_key=access_key, seal=False)
        try:
            driver.seal()
        except Refused:
            driver.close()
            assert time.monotonic() < deadline, "a new access key was still refused after 15 s"
            time.sleep(0.2)
            continue
        return driver


def test_a_zone_bound_access_key_admits_only_its_zone(new_collector: Factory, target: Target) -> None:
    sealed_only(target)
    key = created_access_key(target, "--zone", f"other-{secrets.token_hex(2)}")
    driver = once_the_gateway_knows(new_collector, key["access_key"])  # the handshake passes: a valid key
    driver.hello()
    disconnect = disconnect_of(driver)  # the Hello (first record) names another zone
    assert disconnect.reason == reason(driver, "DISCONNECT_REASON_ACCESS_KEY_REFUSED")
    assert driver.hello_fields["name"] not in collector_names(target)


def test_a_revoked_access_key_is_refused_and_nothing_is_stored(new_collector: Factory, target: Target) -> None:
    sealed_only(target)
    key = created_access_key(target)
    target.admin.run("access-keys", "revoke", key["name"])
    deadline = time.monotonic() + 15
    while True:  # the gateway learns of the revocation from the registry's watch, within moments
        driver = new_collector(access_key=key["access_key"], seal=False)
        try:
            driver.seal()
        except Refused as refused:
            assert refused.disconnect.reason == reason(driver, "DISCONNECT_REASON_ACCESS_KEY_REFUSED")
            break
        driver.close()
        assert time.monotonic() < deadline, "a revoked access key was still accepted after 15 s"
        time.sleep(0.2)
    assert driver.hello_fields["name"] not in collector_names(target)


# --- §12.14 rotating the identity key -------------------------------------------------------------
def test_a_key_rotation_in_the_live_session_is_applied_and_forgeries_change_nothing(
    new_collector: Factory, target: Target
) -> None:
    sealed_only(target)
    driver = new_collector()
    enabled(driver, target)
    old = fingerprint(driver.public_key)
    new_key = Ed25519PrivateKey.generate()
    forgeries = {
        "signed by a key not on record": {"signer": Ed25519PrivateKey.generate()},
        "signed for another session": {"handshake_hash": secrets.token_bytes(32)},
        "without the new key's signature": {"prove": False},
    }
    for what, forgery in forgeries.items():
        refused = driver.key_rotation(new_key, **forgery)
        assert not refused.accepted, what
        assert refused.reason and refused.fingerprint == old, what

    accepted = driver.key_rotation(new_key)
    assert accepted.accepted, accepted.reason
    assert accepted.fingerprint == fingerprint(raw_key(new_key)) != old
    driver.heartbeat()  # the session goes on under the key it was opened with
    driver.expect("heartbeat_ack")
    shown = json.loads(admin_alive(driver, target, "collectors", "show", driver.hello_fields["name"], "--json"))
    assert shown["fingerprint"] == accepted.fingerprint and shown["key_rotated_at"]
