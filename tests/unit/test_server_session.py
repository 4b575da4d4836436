"""ServerSession: every state x every collector message, the handshake and the registry's
first decision.

Each step asserts the full resulting state, every envelope `data_to_send()` returns and
every event, in the style of h11's test_state.py. Time is a plain float passed in.
"""

from __future__ import annotations

import itertools

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import LocalProtocolError
from outpost.session.server import (
    ACCEPTED_STATES,
    HANDSHAKE_STATES,
    MAX_CAPABILITIES,
    REQUIRED_HELLO_FIELDS,
    AuthDecision,
    AuthenticationRequested,
    Event,
    HeartbeatReceived,
    ServerSession,
    ServerSessionConfig,
    ServerState,
    SessionAccepted,
    SessionClosed,
    StateEntered,
)
from outpost.version import PROTOCOL_VERSION
from tests.unit.collector_identity import FINGERPRINT, HELLO, NONCE, SERVER_INSTANCE, SESSION_ID, SIGNATURE, make_hello
from tests.unit.server_driver import (
    ACK,
    AUTH_REQUESTED,
    CHALLENGE,
    COLLECTOR_BYE,
    HANDSHAKE_TIMEOUT,
    KINDS,
    LIVENESS,
    NOW,
    PEER_CLOSED,
    Body,
    R,
    S,
    accept,
    disconnect,
    drive_to,
    from_collector,
    message_of_kind,
    new_session,
    pending,
    protocol_error,
    welcome,
)

BEAT = [HeartbeatReceived(agent_pb2.Heartbeat())]

# --- every state x every collector message ----------------------------------------------
# (state, message kind, resulting state, bodies sent, events)
TRANSITIONS = [
    (S.AWAIT_HELLO, "hello", S.AWAIT_PROOF, [CHALLENGE], []),
    (S.AWAIT_HELLO, "proof", *protocol_error("proof", S.AWAIT_HELLO)),
    (S.AWAIT_HELLO, "heartbeat", *protocol_error("heartbeat", S.AWAIT_HELLO)),
    (S.AWAIT_HELLO, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.AWAIT_HELLO, "empty", S.AWAIT_HELLO, [], []),
    (S.AWAIT_HELLO, "unknown", S.AWAIT_HELLO, [], []),
    (S.AWAIT_PROOF, "hello", *protocol_error("hello", S.AWAIT_PROOF)),
    (S.AWAIT_PROOF, "proof", S.AUTHENTICATING, [], AUTH_REQUESTED),
    (S.AWAIT_PROOF, "heartbeat", *protocol_error("heartbeat", S.AWAIT_PROOF)),
    (S.AWAIT_PROOF, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.AWAIT_PROOF, "empty", S.AWAIT_PROOF, [], []),
    (S.AWAIT_PROOF, "unknown", S.AWAIT_PROOF, [], []),
    (S.AUTHENTICATING, "hello", *protocol_error("hello", S.AUTHENTICATING)),
    (S.AUTHENTICATING, "proof", *protocol_error("proof", S.AUTHENTICATING)),
    (S.AUTHENTICATING, "heartbeat", S.AUTHENTICATING, [], []),
    (S.AUTHENTICATING, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.AUTHENTICATING, "empty", S.AUTHENTICATING, [], []),
    (S.AUTHENTICATING, "unknown", S.AUTHENTICATING, [], []),
    (S.PENDING, "hello", *protocol_error("hello", S.PENDING)),
    (S.PENDING, "proof", *protocol_error("proof", S.PENDING)),
    (S.PENDING, "heartbeat", S.PENDING, [ACK], BEAT),
    (S.PENDING, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.PENDING, "empty", S.PENDING, [], []),
    (S.PENDING, "unknown", S.PENDING, [], []),
    (S.ENABLED, "hello", *protocol_error("hello", S.ENABLED)),
    (S.ENABLED, "proof", *protocol_error("proof", S.ENABLED)),
    (S.ENABLED, "heartbeat", S.ENABLED, [ACK], BEAT),
    (S.ENABLED, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.ENABLED, "empty", S.ENABLED, [], []),
    (S.ENABLED, "unknown", S.ENABLED, [], []),
    (S.DISABLED, "hello", *protocol_error("hello", S.DISABLED)),
    (S.DISABLED, "proof", *protocol_error("proof", S.DISABLED)),
    (S.DISABLED, "heartbeat", S.DISABLED, [ACK], BEAT),
    (S.DISABLED, "disconnect", S.CLOSED, [], PEER_CLOSED),
    (S.DISABLED, "empty", S.DISABLED, [], []),
    (S.DISABLED, "unknown", S.DISABLED, [], []),
    (S.CLOSED, "hello", S.CLOSED, [], []),
    (S.CLOSED, "proof", S.CLOSED, [], []),
    (S.CLOSED, "heartbeat", S.CLOSED, [], []),
    (S.CLOSED, "disconnect", S.CLOSED, [], []),
    (S.CLOSED, "empty", S.CLOSED, [], []),
    (S.CLOSED, "unknown", S.CLOSED, [], []),
]


def test_transition_table_covers_every_state_and_message_kind() -> None:
    covered = [(row[0], row[1]) for row in TRANSITIONS]
    assert sorted(covered, key=str) == sorted(itertools.product(S, KINDS), key=str)


@pytest.mark.parametrize(
    ("state", "kind", "next_state", "bodies", "events"),
    TRANSITIONS,
    ids=[f"{row[0].value}-{row[1]}" for row in TRANSITIONS],
)
def test_collector_message_in_state_gives_exactly_the_expected_outcome(
    state: ServerState,
    kind: str,
    next_state: ServerState,
    bodies: list[Body],
    events: list[Event],
) -> None:
    driven = drive_to(state)
    session = driven.session
    received_at = NOW + 1

    session.receive(message_of_kind(kind, driven.collector_sequence + 1), received_at)

    assert session.state is next_state
    assert session.closed is (next_state is S.CLOSED)
    assert session.data_to_send() == driven.sent(*bodies)
    assert session.events_received() == events
    if next_state in HANDSHAKE_STATES:
        assert session.next_deadline() == NOW + HANDSHAKE_TIMEOUT
    elif next_state in ACCEPTED_STATES:
        assert session.next_deadline() == received_at + LIVENESS
    else:
        assert session.next_deadline() is None


# --- the handshake ----------------------------------------------------------------------
def test_new_session_waits_for_hello_until_the_handshake_deadline() -> None:
    session = new_session()

    assert session.state is S.AWAIT_HELLO
    assert not session.closed
    assert session.hello is None
    assert session.revision == 0
    assert session.fingerprint == ""
    assert session.next_deadline() == NOW + HANDSHAKE_TIMEOUT
    assert session.data_to_send() == []
    assert session.events_received() == []


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 2**32 - 1])
def test_wrong_protocol_version_is_refused_as_unsupported_without_retry(version: int) -> None:
    driven = drive_to(S.AWAIT_HELLO)

    driven.feed(hello=make_hello(protocol_version=version))

    message = f"protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"
    reason = R.DISCONNECT_REASON_UNSUPPORTED_VERSION
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message, retry=False)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]
    assert driven.session.hello is None


def assert_hello_refused(hello: agent_pb2.Hello, message: str) -> None:
    driven = drive_to(S.AWAIT_HELLO)

    driven.feed(hello=hello)

    reason = R.DISCONNECT_REASON_PROTOCOL_ERROR
    assert driven.session.state is S.CLOSED
    assert driven.session.hello is None
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


def assert_hello_challenged(hello: agent_pb2.Hello) -> None:
    driven = drive_to(S.AWAIT_HELLO)

    driven.feed(hello=hello)

    assert driven.session.state is S.AWAIT_PROOF
    assert driven.session.hello == hello
    assert driven.session.data_to_send() == driven.sent(CHALLENGE)
    assert driven.session.events_received() == []


@pytest.mark.parametrize("field", REQUIRED_HELLO_FIELDS)
def test_hello_without_a_required_field_is_a_protocol_error(field: str) -> None:
    assert_hello_refused(make_hello(**{field: ""}), f"hello without {field}")


FIELD_LIMITS = [
    ("instance_uid", 256),
    ("name", 256),
    ("username", 256),
    ("password_verifier", 512),
    ("zone", 256),
    ("version", 256),
    ("bound_server_instance", 256),
]


@pytest.mark.parametrize(("field", "limit"), FIELD_LIMITS)
def test_hello_field_over_its_limit_is_a_protocol_error(field: str, limit: int) -> None:
    assert_hello_refused(make_hello(**{field: "x" * (limit + 1)}), f"hello {field} longer than {limit} characters")


@pytest.mark.parametrize(("field", "limit"), FIELD_LIMITS)
def test_hello_field_at_its_limit_is_challenged(field: str, limit: int) -> None:
    hello = make_hello(
        **{field: "é" * limit},
        **({"bound_server_instance": ""} if field != "bound_server_instance" else {}),
    )
    assert_hello_challenged(hello)


def test_hello_without_the_optional_fields_is_challenged() -> None:
    assert_hello_challenged(make_hello(zone="", version="", capabilities=[]))


def test_hello_of_a_collector_bound_to_this_instance_is_challenged() -> None:
    assert_hello_challenged(make_hello(bound_server_instance=SERVER_INSTANCE))


CAPABILITIES_MESSAGE = "hello capabilities: at most 64 of at most 256 characters each"


@pytest.mark.parametrize(
    "capabilities",
    [[f"cap.{i}" for i in range(MAX_CAPABILITIES + 1)], ["ok", "c" * 257]],
    ids=["too-many", "one-too-long"],
)
def test_hello_with_oversized_capabilities_is_a_protocol_error(capabilities: list[str]) -> None:
    assert_hello_refused(make_hello(capabilities=capabilities), CAPABILITIES_MESSAGE)


def test_hello_with_capabilities_at_their_limits_is_challenged() -> None:
    capabilities = [f"{i:03d}" + "c" * 253 for i in range(MAX_CAPABILITIES)]
    assert_hello_challenged(make_hello(capabilities=capabilities))


@pytest.mark.parametrize(
    "algorithms",
    [[f"alg-{i}" for i in range(9)], ["hpke-base-x25519-sha256-chacha20poly1305", "a" * 65], [""]],
    ids=["too-many", "one-too-long", "empty-id"],
)
def test_hello_with_an_oversized_sealing_list_is_a_protocol_error(algorithms: list[str]) -> None:
    message = f"hello sealing_algorithms: at most 8 ids of 1 to 64 characters each, got {len(algorithms)}"
    assert_hello_refused(make_hello(sealing_algorithms=algorithms), message)


def test_hello_with_sealing_algorithms_at_their_limits_is_challenged() -> None:
    assert_hello_challenged(make_hello(sealing_algorithms=[f"{i}" + "a" * 63 for i in range(8)]))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_hello_public_key_that_is_not_32_bytes_is_a_protocol_error(length: int) -> None:
    assert_hello_refused(make_hello(public_key=b"\x01" * length), "hello public_key must be a 32-byte Ed25519 key")


def test_session_keeps_its_own_copy_of_the_hello() -> None:
    driven = drive_to(S.AWAIT_HELLO)
    envelope = from_collector(1, hello=HELLO)
    driven.session.receive(envelope, NOW)

    envelope.hello.name = "someone-else"

    assert driven.session.hello == HELLO


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_proof_signature_that_is_not_64_bytes_is_a_protocol_error(length: int) -> None:
    driven = drive_to(S.AWAIT_PROOF)

    driven.feed(proof=agent_pb2.Proof(signature=b"\x02" * length))

    reason = R.DISCONNECT_REASON_PROTOCOL_ERROR
    message = "proof signature must be 64 bytes"
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


def test_proof_asks_the_registry_without_checking_the_signature_itself() -> None:
    driven = drive_to(S.AWAIT_PROOF)
    forged = b"\x00" * 64

    driven.feed(proof=agent_pb2.Proof(signature=forged))

    assert driven.session.state is S.AUTHENTICATING
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == [AuthenticationRequested(HELLO, NONCE, forged)]


# --- the registry's decision ------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "body"),
    [
        (S.PENDING, pending()),
        (S.ENABLED, welcome(S.ENABLED)),
        (S.DISABLED, welcome(S.DISABLED)),
    ],
    ids=["pending", "enabled", "disabled"],
)
def test_accepted_handshake_enters_the_registry_state_and_tells_the_collector(state: ServerState, body: Body) -> None:
    driven = drive_to(S.AUTHENTICATING)
    decided_at = NOW + 2

    driven.session.authenticated(accept(state, revision=7), decided_at)

    session = driven.session
    assert session.state is state
    assert session.revision == 7
    assert session.fingerprint == FINGERPRINT
    assert session.data_to_send() == driven.sent(body)
    assert session.events_received() == [
        SessionAccepted(HELLO.instance_uid, HELLO.name, state),
        StateEntered(state, ""),
    ]
    assert session.next_deadline() == decided_at + LIVENESS


def test_accepted_session_takes_the_registered_name_and_zone_not_the_hellos() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(accept(S.ENABLED, name="edge-a", zone="lab"), NOW)

    accepted = driven.session.events_received()[0]
    assert accepted == SessionAccepted(HELLO.instance_uid, "edge-a", S.ENABLED, "lab")
    assert HELLO.zone != "lab"


def test_accepted_pending_session_carries_the_registry_reason_and_interval() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(accept(S.PENDING, reason="ask ops to register edge-7", heartbeat_interval=20.0), NOW)

    assert driven.session.data_to_send() == driven.sent(pending("ask ops to register edge-7", interval=20))
    assert driven.session.events_received()[1] == StateEntered(S.PENDING, "ask ops to register edge-7")
    assert driven.session.next_deadline() == NOW + 60


def test_decision_without_an_interval_uses_the_configured_one() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(accept(S.ENABLED, heartbeat_interval=0.0), NOW)

    assert driven.session.data_to_send() == driven.sent(welcome(S.ENABLED, interval=30))
    assert driven.session.next_deadline() == NOW + LIVENESS


def test_sub_second_heartbeat_interval_is_sent_and_enforced_as_one_second() -> None:
    session = new_session(heartbeat_interval=0.25)
    session.receive(from_collector(1, hello=HELLO), NOW)
    session.receive(from_collector(2, proof=agent_pb2.Proof(signature=SIGNATURE)), NOW)
    session.data_to_send()

    session.authenticated(accept(S.PENDING, heartbeat_interval=0.0), NOW)

    [message] = session.data_to_send()
    assert message.pending.heartbeat_interval_seconds == 1
    assert session.next_deadline() == NOW + 3


def test_fractional_heartbeat_interval_is_rounded_up_on_both_ends_alike() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(accept(S.ENABLED, heartbeat_interval=12.5), NOW)

    [message] = driven.session.data_to_send()
    assert message.welcome.heartbeat_interval_seconds == 13
    assert driven.session.next_deadline() == NOW + 39


@pytest.mark.parametrize(
    ("refusal", "retry"),
    [
        (R.DISCONNECT_REASON_AUTHENTICATION_FAILED, True),
        (R.DISCONNECT_REASON_NAME_CONFLICT, True),
        (R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE, True),
        (R.DISCONNECT_REASON_UNAVAILABLE, True),
        (R.DISCONNECT_REASON_UNSUPPORTED_VERSION, False),
    ],
    ids=lambda value: R.Name(value) if isinstance(value, int) and value > 1 else None,
)
def test_refused_handshake_disconnects_with_the_refusal(refusal: agent_pb2.DisconnectReason, retry: bool) -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(
        AuthDecision(accepted=False, refusal=refusal, message="wrong password for svc-edge-7"),
        NOW,
    )

    message = "wrong password for svc-edge-7"
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(refusal, message, retry=retry)})
    assert driven.session.events_received() == [SessionClosed(refusal, message, by_peer=False)]
    assert driven.session.next_deadline() is None


def test_a_rate_limited_refusal_tells_the_collector_when_to_try_again() -> None:
    driven = drive_to(S.AUTHENTICATING)
    reason, message = R.DISCONNECT_REASON_RATE_LIMITED, "too many failed handshakes; try again in 42 s"

    driven.session.authenticated(AuthDecision(accepted=False, refusal=reason, message=message, retry_after=42), NOW)

    expected = disconnect(reason, message, retry=True, retry_after=42)
    assert driven.session.data_to_send() == driven.sent({"disconnect": expected})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


def test_failing_a_session_for_a_rate_limit_carries_the_retry_hint() -> None:
    driven = drive_to(S.AWAIT_HELLO)
    reason, message = R.DISCONNECT_REASON_RATE_LIMITED, "too many failed handshakes from this address; try again in 9 s"

    driven.session.fail(reason, message, retry_after=9)

    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message, retry_after=9)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


def test_refusal_without_a_message_still_tells_the_collector_why() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(AuthDecision(accepted=False), NOW)

    reason = R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    message = "the server refused this collector"
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


@pytest.mark.parametrize("state", [S.AWAIT_HELLO, S.AWAIT_PROOF, S.PENDING, S.ENABLED, S.DISABLED])
def test_authenticated_outside_authenticating_is_a_local_protocol_error(
    state: ServerState,
) -> None:
    driven = drive_to(state)

    with pytest.raises(LocalProtocolError, match=f"authenticated\\(\\) in state {state.value}"):
        driven.session.authenticated(accept(S.ENABLED, revision=9), NOW)

    assert driven.session.state is state
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


def test_authenticated_after_the_session_closed_is_ignored() -> None:
    driven = drive_to(S.AUTHENTICATING)
    driven.feed(disconnect=COLLECTOR_BYE)
    driven.session.events_received()

    driven.session.authenticated(accept(S.ENABLED), NOW)

    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


@pytest.mark.parametrize("state", [S.AWAIT_HELLO, S.AUTHENTICATING, S.CLOSED])
def test_accepting_into_a_state_that_is_not_a_collector_state_is_a_local_protocol_error(
    state: ServerState,
) -> None:
    driven = drive_to(S.AUTHENTICATING)

    with pytest.raises(LocalProtocolError):
        driven.session.authenticated(accept(state), NOW)

    assert driven.session.state is S.AUTHENTICATING
    assert driven.session.data_to_send() == []


def test_nonce_that_is_not_32_bytes_is_a_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="32 random bytes"):
        ServerSession(ServerSessionConfig(SERVER_INSTANCE), SESSION_ID, nonce=b"\x01" * 16, now=NOW)
