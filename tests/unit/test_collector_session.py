"""CollectorSession: every state x every server message, the handshake, heartbeats and
deadlines, asserting the full state, every envelope sent and every event at each step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from outpost.session.collector import (
    ACCEPTED_STATES,
    HANDSHAKE_STATES,
    Accepted,
    Closed,
    CollectorSession,
    CollectorState,
    Event,
    StateChanged,
    Throttled,
)
from outpost.session.errors import LocalProtocolError
from tests.unit.collector_identity import (
    FINGERPRINT,
    HELLO,
    NONCE,
    OTHER_NONCE,
    OTHER_SERVER_INSTANCE,
    SERVER_INSTANCE,
    SESSION_ID,
    SIGNATURE,
    make_hello,
    sign,
)

R = agent_pb2.DisconnectReason
CS = agent_pb2.CollectorState
C = CollectorState

NOW = 500.0
HANDSHAKE_TIMEOUT = 15.0
SERVER_HEARTBEAT = 20  # what the server's Pending/Welcome in this file announce
Body = dict[str, object]


def new_session(hello: agent_pb2.Hello = HELLO) -> CollectorSession:
    return CollectorSession(hello, sign, now=NOW, handshake_timeout=HANDSHAKE_TIMEOUT)


def from_server(sequence: int = 0, **body: object) -> agent_pb2.ServerMessage:
    return agent_pb2.ServerMessage(sequence=sequence, **body)  # type: ignore[arg-type]


def from_collector(sequence: int, **body: object) -> agent_pb2.CollectorMessage:
    return agent_pb2.CollectorMessage(sequence=sequence, **body)  # type: ignore[arg-type]


def unknown_kind() -> agent_pb2.ServerMessage:
    """What a newer server's new body kind (field 40 here) parses as: no known body."""
    return agent_pb2.ServerMessage.FromString(bytes([0xC2, 0x02, 0x00]))


CHALLENGE = agent_pb2.Challenge(nonce=NONCE, server_instance=SERVER_INSTANCE)
PENDING = agent_pb2.Pending(
    fingerprint=FINGERPRINT,
    message="waiting for an admin to register this collector",
    heartbeat_interval_seconds=SERVER_HEARTBEAT,
    session_id=SESSION_ID,
)
WELCOME = agent_pb2.Welcome(
    state=CS.COLLECTOR_STATE_ENABLED,
    server_instance=SERVER_INSTANCE,
    heartbeat_interval_seconds=SERVER_HEARTBEAT,
    session_id=SESSION_ID,
    fingerprint=FINGERPRINT,
    reason="registered by alice",
)
STATE_CHANGE = agent_pb2.StateChange(state=CS.COLLECTOR_STATE_DISABLED, reason="maintenance window", changed_by="alice")
SERVER_BYE = agent_pb2.Disconnect(
    reason=R.DISCONNECT_REASON_SHUTTING_DOWN,
    message="gateway shutting down",
    retry=True,
    retry_after_seconds=7,
)
BODIES: dict[str, Body] = {
    "challenge": {"challenge": CHALLENGE},
    "pending": {"pending": PENDING},
    "welcome": {"welcome": WELCOME},
    "state_change": {"state_change": STATE_CHANGE},
    "heartbeat_ack": {"heartbeat_ack": agent_pb2.HeartbeatAck()},
    "disconnect": {"disconnect": SERVER_BYE},
    "throttle": {"throttle": agent_pb2.Throttle(retry_after_ms=2500, reason="database unavailable")},
    "empty": {},
}
KINDS = [*BODIES, "unknown"]


def message_of_kind(kind: str) -> agent_pb2.ServerMessage:
    return unknown_kind() if kind == "unknown" else from_server(0, **BODIES[kind])


@dataclass
class Driven:
    session: CollectorSession
    sent_count: int

    def sent(self, *bodies: Body) -> list[agent_pb2.CollectorMessage]:
        """The envelopes these bodies become as the collector's next messages."""
        return [from_collector(self.sent_count + i, **body) for i, body in enumerate(bodies, 1)]


def drive_to(state: CollectorState, now: float = NOW) -> Driven:
    session = new_session()
    if state is not C.IDLE:
        session.start(now)
    if state in ACCEPTED_STATES or state is C.AWAIT_DECISION:
        session.receive(from_server(1, challenge=CHALLENGE), now)
    if state is C.PENDING:
        session.receive(from_server(2, pending=PENDING), now)
    if state in (C.ENABLED, C.DISABLED):
        welcome = agent_pb2.Welcome()
        welcome.CopyFrom(WELCOME)
        welcome.state = CS.COLLECTOR_STATE_ENABLED if state is C.ENABLED else CS.COLLECTOR_STATE_DISABLED
        session.receive(from_server(2, welcome=welcome), now)
    if state is C.CLOSED:
        session.shutdown()
    assert session.state is state
    driven = Driven(session, len(session.data_to_send()))
    session.events_received()
    return driven


def protocol_error(kind: str, state: CollectorState) -> tuple[CollectorState, list[Body], list[Event]]:
    message = f"unexpected {kind} message in state {state.value}"
    return protocol_error_with(message)


def protocol_error_with(message: str) -> tuple[CollectorState, list[Body], list[Event]]:
    reason = R.DISCONNECT_REASON_PROTOCOL_ERROR
    return (
        C.CLOSED,
        [{"disconnect": agent_pb2.Disconnect(reason=reason, message=message)}],
        [Closed(reason, message, retry=True, retry_after=0.0, by_server=False)],
    )


PROOF: Body = {"proof": agent_pb2.Proof(signature=SIGNATURE)}
SERVER_CLOSED: list[Event] = [
    Closed(
        R.DISCONNECT_REASON_SHUTTING_DOWN,
        "gateway shutting down",
        retry=True,
        retry_after=7.0,
        by_server=True,
    )
]
ACCEPTED = Accepted(SERVER_INSTANCE, SESSION_ID, FINGERPRINT)
NOW_PENDING = StateChanged(C.PENDING, "waiting for an admin to register this collector", "")
NOW_ENABLED = StateChanged(C.ENABLED, "registered by alice", "")
NOW_DISABLED = StateChanged(C.DISABLED, "maintenance window", "alice")
THROTTLED = Throttled(2.5, "database unavailable")

# (state, message kind, resulting state, bodies sent, events)
TRANSITIONS = [
    (C.AWAIT_CHALLENGE, "challenge", C.AWAIT_DECISION, [PROOF], []),
    (C.AWAIT_CHALLENGE, "pending", *protocol_error("pending", C.AWAIT_CHALLENGE)),
    (C.AWAIT_CHALLENGE, "welcome", *protocol_error("welcome", C.AWAIT_CHALLENGE)),
    (C.AWAIT_CHALLENGE, "state_change", *protocol_error("state_change", C.AWAIT_CHALLENGE)),
    (C.AWAIT_CHALLENGE, "heartbeat_ack", *protocol_error("heartbeat_ack", C.AWAIT_CHALLENGE)),
    (C.AWAIT_CHALLENGE, "disconnect", C.CLOSED, [], SERVER_CLOSED),
    (C.AWAIT_CHALLENGE, "throttle", *protocol_error("throttle", C.AWAIT_CHALLENGE)),
    (C.AWAIT_CHALLENGE, "empty", C.AWAIT_CHALLENGE, [], []),
    (C.AWAIT_CHALLENGE, "unknown", C.AWAIT_CHALLENGE, [], []),
    (C.AWAIT_DECISION, "challenge", *protocol_error("challenge", C.AWAIT_DECISION)),
    (C.AWAIT_DECISION, "pending", C.PENDING, [], [ACCEPTED, NOW_PENDING]),
    (C.AWAIT_DECISION, "welcome", C.ENABLED, [], [ACCEPTED, NOW_ENABLED]),
    (C.AWAIT_DECISION, "state_change", *protocol_error("state_change", C.AWAIT_DECISION)),
    (C.AWAIT_DECISION, "heartbeat_ack", *protocol_error("heartbeat_ack", C.AWAIT_DECISION)),
    (C.AWAIT_DECISION, "disconnect", C.CLOSED, [], SERVER_CLOSED),
    (C.AWAIT_DECISION, "throttle", *protocol_error("throttle", C.AWAIT_DECISION)),
    (C.AWAIT_DECISION, "empty", C.AWAIT_DECISION, [], []),
    (C.AWAIT_DECISION, "unknown", C.AWAIT_DECISION, [], []),
    (C.PENDING, "challenge", *protocol_error("challenge", C.PENDING)),
    (C.PENDING, "pending", C.PENDING, [], []),
    (C.PENDING, "welcome", C.ENABLED, [], [NOW_ENABLED]),
    (C.PENDING, "state_change", *protocol_error("state_change", C.PENDING)),
    (C.PENDING, "heartbeat_ack", C.PENDING, [], []),
    (C.PENDING, "disconnect", C.CLOSED, [], SERVER_CLOSED),
    (C.PENDING, "throttle", *protocol_error("throttle", C.PENDING)),
    (C.PENDING, "empty", C.PENDING, [], []),
    (C.PENDING, "unknown", C.PENDING, [], []),
    (C.ENABLED, "challenge", *protocol_error("challenge", C.ENABLED)),
    (C.ENABLED, "pending", C.PENDING, [], [NOW_PENDING]),
    (C.ENABLED, "welcome", *protocol_error("welcome", C.ENABLED)),
    (C.ENABLED, "state_change", C.DISABLED, [], [NOW_DISABLED]),
    (C.ENABLED, "heartbeat_ack", C.ENABLED, [], []),
    (C.ENABLED, "disconnect", C.CLOSED, [], SERVER_CLOSED),
    (C.ENABLED, "throttle", C.ENABLED, [], [THROTTLED]),
    (C.ENABLED, "empty", C.ENABLED, [], []),
    (C.ENABLED, "unknown", C.ENABLED, [], []),
    (C.DISABLED, "challenge", *protocol_error("challenge", C.DISABLED)),
    (C.DISABLED, "pending", C.PENDING, [], [NOW_PENDING]),
    (C.DISABLED, "welcome", *protocol_error("welcome", C.DISABLED)),
    (C.DISABLED, "state_change", C.DISABLED, [], [NOW_DISABLED]),
    (C.DISABLED, "heartbeat_ack", C.DISABLED, [], []),
    (C.DISABLED, "disconnect", C.CLOSED, [], SERVER_CLOSED),
    (C.DISABLED, "throttle", C.DISABLED, [], [THROTTLED]),
    (C.DISABLED, "empty", C.DISABLED, [], []),
    (C.DISABLED, "unknown", C.DISABLED, [], []),
    *[(C.CLOSED, kind, C.CLOSED, [], []) for kind in KINDS],
]


def test_transition_table_covers_every_started_state_and_message_kind() -> None:
    covered = [(row[0], row[1]) for row in TRANSITIONS]
    started = [state for state in C if state is not C.IDLE]
    assert sorted(covered, key=str) == sorted(itertools.product(started, KINDS), key=str)


@pytest.mark.parametrize(
    ("state", "kind", "next_state", "bodies", "events"),
    TRANSITIONS,
    ids=[f"{row[0].value}-{row[1]}" for row in TRANSITIONS],
)
def test_server_message_in_state_gives_exactly_the_expected_outcome(
    state: CollectorState,
    kind: str,
    next_state: CollectorState,
    bodies: list[Body],
    events: list[Event],
) -> None:
    driven = drive_to(state)
    session = driven.session
    received_at = NOW + 1

    session.receive(message_of_kind(kind), received_at)

    assert session.state is next_state
    assert session.closed is (next_state is C.CLOSED)
    assert session.data_to_send() == driven.sent(*bodies)
    assert session.events_received() == events
    if next_state in HANDSHAKE_STATES:
        assert session.next_deadline() == NOW + HANDSHAKE_TIMEOUT
    elif next_state in ACCEPTED_STATES:
        # the next heartbeat is due one interval after the last Pending/Welcome
        accepted_at = received_at if kind in {"pending", "welcome"} else NOW
        assert session.next_deadline() == accepted_at + SERVER_HEARTBEAT
    else:
        assert session.next_deadline() is None


# --- starting -----------------------------------------------------------------------------
def test_new_session_is_idle_and_sends_nothing() -> None:
    session = new_session()

    assert session.state is C.IDLE
    assert not session.closed
    assert session.next_deadline() is None
    assert session.data_to_send() == []
    assert session.events_received() == []


def test_start_sends_the_hello_and_awaits_the_challenge() -> None:
    session = new_session()

    session.start(NOW)

    assert session.state is C.AWAIT_CHALLENGE
    assert session.data_to_send() == [from_collector(1, hello=HELLO)]
    assert session.events_received() == []
    assert session.next_deadline() == NOW + HANDSHAKE_TIMEOUT


def test_start_twice_is_a_local_protocol_error() -> None:
    session = new_session()
    session.start(NOW)
    session.data_to_send()

    with pytest.raises(LocalProtocolError, match="start"):
        session.start(NOW)

    assert session.state is C.AWAIT_CHALLENGE
    assert session.data_to_send() == []


@pytest.mark.parametrize("kind", KINDS)
def test_receive_before_start_is_a_local_protocol_error(kind: str) -> None:
    session = new_session()

    with pytest.raises(LocalProtocolError, match="before start"):
        session.receive(message_of_kind(kind), NOW)

    assert session.state is C.IDLE
    assert session.data_to_send() == []
    assert session.events_received() == []


# --- the handshake ------------------------------------------------------------------------
def test_proof_signs_the_transcript_of_this_hello_nonce_and_instance() -> None:
    driven = drive_to(C.AWAIT_CHALLENGE)

    driven.session.receive(from_server(1, challenge=CHALLENGE), NOW)

    [message] = driven.session.data_to_send()
    signature = message.proof.signature
    assert handshake.verify(HELLO, NONCE, SERVER_INSTANCE, signature)
    assert not handshake.verify(HELLO, OTHER_NONCE, SERVER_INSTANCE, signature)
    assert not handshake.verify(HELLO, NONCE, OTHER_SERVER_INSTANCE, signature)
    assert driven.session.server_instance == SERVER_INSTANCE


def test_collector_bound_to_the_challenging_instance_sends_its_proof() -> None:
    hello = make_hello(bound_server_instance=SERVER_INSTANCE)
    session = new_session(hello)
    session.start(NOW)
    session.data_to_send()

    session.receive(from_server(1, challenge=CHALLENGE), NOW)

    [message] = session.data_to_send()
    assert session.state is C.AWAIT_DECISION
    assert handshake.verify(hello, NONCE, SERVER_INSTANCE, message.proof.signature)


def test_collector_bound_to_another_instance_closes_naming_both_and_signs_nothing() -> None:
    signed: list[bytes] = []
    hello = make_hello(bound_server_instance=OTHER_SERVER_INSTANCE)
    session = CollectorSession(hello, signed.append, now=NOW)  # type: ignore[arg-type]
    session.start(NOW)
    session.data_to_send()

    session.receive(from_server(1, challenge=CHALLENGE), NOW)

    reason = R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE
    message = (
        f"this collector is bound to server instance {OTHER_SERVER_INSTANCE}, "
        f"not {SERVER_INSTANCE}; reinstall it (fresh data directory) to move it"
    )
    assert signed == []
    assert session.state is C.CLOSED
    assert session.data_to_send() == [
        from_collector(2, disconnect=agent_pb2.Disconnect(reason=reason, message=message))
    ]
    assert session.events_received() == [Closed(reason, message, retry=True, retry_after=0.0, by_server=False)]


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        (
            agent_pb2.Challenge(nonce=b"\x01" * 16, server_instance=SERVER_INSTANCE),
            "challenge nonce must be 32 bytes",
        ),
        (
            agent_pb2.Challenge(nonce=b"", server_instance=SERVER_INSTANCE),
            "challenge nonce must be 32 bytes",
        ),
        (
            agent_pb2.Challenge(nonce=NONCE, server_instance=""),
            "challenge without a server instance",
        ),
    ],
    ids=["short-nonce", "no-nonce", "no-instance"],
)
def test_malformed_challenge_is_a_protocol_error(challenge: agent_pb2.Challenge, message: str) -> None:
    driven = drive_to(C.AWAIT_CHALLENGE)

    driven.session.receive(from_server(1, challenge=challenge), NOW)

    state, bodies, events = protocol_error_with(message)
    assert driven.session.state is state
    assert driven.session.data_to_send() == driven.sent(*bodies)
    assert driven.session.events_received() == events
    assert driven.session.server_instance == ""


@pytest.mark.parametrize("state", [CS.COLLECTOR_STATE_UNSPECIFIED, CS.COLLECTOR_STATE_PENDING, 99])
def test_welcome_without_an_enabled_or_disabled_state_is_a_protocol_error(state: int) -> None:
    driven = drive_to(C.AWAIT_DECISION)
    welcome = agent_pb2.Welcome()
    welcome.CopyFrom(WELCOME)
    welcome.state = state  # type: ignore[assignment]

    driven.session.receive(from_server(2, welcome=welcome), NOW)

    expected = protocol_error_with("welcome without an enabled or disabled state")
    assert (driven.session.state, driven.session.data_to_send()) == (
        expected[0],
        driven.sent(*expected[1]),
    )
    assert driven.session.events_received() == expected[2]


def test_welcome_from_another_instance_than_the_challenge_is_a_protocol_error() -> None:
    driven = drive_to(C.AWAIT_DECISION)
    welcome = agent_pb2.Welcome()
    welcome.CopyFrom(WELCOME)
    welcome.server_instance = OTHER_SERVER_INSTANCE

    driven.session.receive(from_server(2, welcome=welcome), NOW)

    message = f"welcome from server instance {OTHER_SERVER_INSTANCE}, but the challenge came from {SERVER_INSTANCE}"
    state, bodies, events = protocol_error_with(message)
    assert driven.session.state is state
    assert driven.session.data_to_send() == driven.sent(*bodies)
    assert driven.session.events_received() == events


def test_welcome_with_a_disabled_state_accepts_the_collector_as_disabled() -> None:
    driven = drive_to(C.AWAIT_DECISION)
    welcome = agent_pb2.Welcome(
        state=CS.COLLECTOR_STATE_DISABLED, server_instance=SERVER_INSTANCE, session_id=SESSION_ID
    )

    driven.session.receive(from_server(2, welcome=welcome), NOW)

    assert driven.session.state is C.DISABLED
    assert driven.session.session_id == SESSION_ID
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == [
        Accepted(SERVER_INSTANCE, SESSION_ID, ""),
        StateChanged(C.DISABLED, "registered by an admin", ""),
    ]


@pytest.mark.parametrize("state", [CS.COLLECTOR_STATE_UNSPECIFIED, CS.COLLECTOR_STATE_PENDING, 99])
def test_state_change_to_an_unknown_or_pending_state_is_a_protocol_error(state: int) -> None:
    driven = drive_to(C.ENABLED)

    driven.session.receive(
        from_server(3, state_change=agent_pb2.StateChange(state=state)),  # type: ignore[arg-type]
        NOW,
    )

    expected = protocol_error_with("state change to an unknown or pending state")
    assert driven.session.state is expected[0]
    assert driven.session.data_to_send() == driven.sent(*expected[1])
    assert driven.session.events_received() == expected[2]


def test_accepted_collector_keeps_the_session_id_and_binding_of_its_first_acceptance() -> None:
    driven = drive_to(C.PENDING)
    welcome = agent_pb2.Welcome()
    welcome.CopyFrom(WELCOME)
    welcome.session_id = "a-different-id"

    driven.session.receive(from_server(3, welcome=welcome), NOW)

    assert driven.session.state is C.ENABLED
    assert driven.session.session_id == SESSION_ID
    assert driven.session.server_instance == SERVER_INSTANCE
    assert driven.session.events_received() == [NOW_ENABLED]


@pytest.mark.parametrize(
    ("disconnect", "closed"),
    [
        (
            agent_pb2.Disconnect(reason=R.DISCONNECT_REASON_REMOVED, message="removed by alice", retry=False),
            Closed(R.DISCONNECT_REASON_REMOVED, "removed by alice", False, 0.0, by_server=True),
        ),
        (
            agent_pb2.Disconnect(
                reason=R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
                message="wrong password",
                retry=True,
                retry_after_seconds=60,
            ),
            Closed(
                R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
                "wrong password",
                True,
                60.0,
                by_server=True,
            ),
        ),
        (
            agent_pb2.Disconnect(reason=R.DISCONNECT_REASON_UNSUPPORTED_VERSION, message="speak v1", retry=False),
            Closed(R.DISCONNECT_REASON_UNSUPPORTED_VERSION, "speak v1", False, 0.0, by_server=True),
        ),
    ],
    ids=["removed", "auth-failed", "unsupported-version"],
)
def test_server_disconnect_closes_with_its_reason_and_retry_hints(
    disconnect: agent_pb2.Disconnect, closed: Closed
) -> None:
    driven = drive_to(C.AWAIT_DECISION)

    driven.session.receive(from_server(2, disconnect=disconnect), NOW)

    assert driven.session.state is C.CLOSED
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == [closed]


# --- heartbeats and deadlines -------------------------------------------------------------
@pytest.mark.parametrize("state", [C.PENDING, C.ENABLED, C.DISABLED])
def test_heartbeats_are_sent_on_the_server_interval(state: CollectorState) -> None:
    driven = drive_to(state)
    session = driven.session
    assert session.heartbeat_interval == SERVER_HEARTBEAT
    assert session.next_deadline() == NOW + 20

    session.tick(NOW + 19.9)
    assert session.data_to_send() == []

    session.tick(NOW + 20)
    assert session.data_to_send() == driven.sent({"heartbeat": agent_pb2.Heartbeat()})
    assert session.next_deadline() == NOW + 40

    session.receive(from_server(3, heartbeat_ack=agent_pb2.HeartbeatAck()), NOW + 20.5)
    session.tick(NOW + 30)
    assert session.data_to_send() == []

    session.tick(NOW + 40)
    assert [m.WhichOneof("body") for m in session.data_to_send()] == ["heartbeat"]
    assert session.state is state
    assert session.events_received() == []


def test_a_heartbeat_carries_the_facts_passed_to_tick_exactly_when_due() -> None:
    """The core gathers nothing: the caller asks `heartbeat_due`, then passes what it carries."""
    driven = drive_to(C.ENABLED)
    session = driven.session
    facts = agent_pb2.Heartbeat(running_job_run_ids=["run-1"], spool=agent_pb2.SpoolStatus(batches=2))

    assert not session.heartbeat_due(NOW + 19.9)
    session.tick(NOW + 19.9, facts)
    assert session.data_to_send() == []

    assert session.heartbeat_due(NOW + 20)
    session.tick(NOW + 20, facts)
    assert session.data_to_send() == driven.sent({"heartbeat": facts})
    assert not session.heartbeat_due(NOW + 20)  # the next one is an interval away

    assert not session.heartbeat_due(NOW + SERVER_HEARTBEAT * 3)  # given up instead, nothing sent
    assert not drive_to(C.AWAIT_CHALLENGE).session.heartbeat_due(NOW + 1000)


def test_pending_without_an_interval_keeps_the_collector_default() -> None:
    driven = drive_to(C.AWAIT_DECISION)

    driven.session.receive(from_server(2, pending=agent_pb2.Pending(session_id="s")), NOW)

    assert driven.session.heartbeat_interval == 30.0
    assert driven.session.next_deadline() == NOW + 30


def test_silent_server_is_given_up_with_heartbeat_timeout() -> None:
    driven = drive_to(C.ENABLED)
    session = driven.session
    for at in (20, 40):
        session.tick(NOW + at)
    driven.sent_count += len(session.data_to_send())
    liveness = NOW + SERVER_HEARTBEAT * 3
    assert session.next_deadline() == liveness

    session.tick(liveness - 0.001)
    assert session.data_to_send() == []
    session.tick(liveness)

    reason = R.DISCONNECT_REASON_HEARTBEAT_TIMEOUT
    message = "server stopped answering heartbeats"
    assert session.state is C.CLOSED
    assert session.data_to_send() == driven.sent({"disconnect": agent_pb2.Disconnect(reason=reason, message=message)})
    assert session.events_received() == [Closed(reason, message, True, 0.0, by_server=False)]
    assert session.next_deadline() is None


def test_any_server_message_counts_as_a_sign_of_life() -> None:
    driven = drive_to(C.PENDING)

    driven.session.receive(unknown_kind(), NOW + 50)

    assert driven.session.next_deadline() == NOW + 20  # the heartbeat still comes first
    driven.session.tick(NOW + 60)
    assert driven.session.state is C.PENDING
    assert driven.session.next_deadline() == NOW + 80


@pytest.mark.parametrize("state", [C.AWAIT_CHALLENGE, C.AWAIT_DECISION])
def test_server_that_does_not_finish_the_handshake_in_time_is_given_up(
    state: CollectorState,
) -> None:
    driven = drive_to(state)
    session = driven.session
    deadline = NOW + HANDSHAKE_TIMEOUT

    session.receive(unknown_kind(), NOW + 10)  # messages do not extend the handshake
    session.tick(deadline - 0.001)
    assert session.state is state
    assert session.data_to_send() == []

    session.tick(deadline)

    reason = R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT
    message = "server did not complete the handshake within 15s"
    assert session.state is C.CLOSED
    assert session.data_to_send() == driven.sent({"disconnect": agent_pb2.Disconnect(reason=reason, message=message)})
    assert session.events_received() == [Closed(reason, message, True, 0.0, by_server=False)]


def test_idle_session_has_no_deadline_and_tick_does_nothing() -> None:
    session = new_session()

    session.tick(NOW + 10_000)

    assert session.state is C.IDLE
    assert session.data_to_send() == []
    assert session.events_received() == []


# --- closing ------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [C.AWAIT_CHALLENGE, C.AWAIT_DECISION, C.PENDING, C.ENABLED])
def test_shutdown_tells_the_server_and_does_not_retry(state: CollectorState) -> None:
    driven = drive_to(state)

    driven.session.shutdown()

    reason = R.DISCONNECT_REASON_CLIENT_SHUTDOWN
    message = "collector shutting down"
    assert driven.session.state is C.CLOSED
    assert driven.session.data_to_send() == driven.sent(
        {"disconnect": agent_pb2.Disconnect(reason=reason, message=message)}
    )
    assert driven.session.events_received() == [Closed(reason, message, retry=False, retry_after=0.0, by_server=False)]


def test_shutdown_before_start_closes_without_sending() -> None:
    session = new_session()

    session.shutdown()

    assert session.state is C.CLOSED
    assert session.data_to_send() == []
    assert [type(event) for event in session.events_received()] == [Closed]


def test_lost_connection_closes_and_suggests_retrying() -> None:
    driven = drive_to(C.ENABLED)

    driven.session.connection_lost()

    assert driven.session.state is C.CLOSED
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == [
        Closed(R.DISCONNECT_REASON_UNAVAILABLE, "connection lost", True, 0.0, by_server=False)
    ]


def test_failure_reported_by_the_transport_tells_the_server_why() -> None:
    driven = drive_to(C.PENDING)

    driven.session.fail(R.DISCONNECT_REASON_MALFORMED_FRAME, "malformed envelope")

    reason = R.DISCONNECT_REASON_MALFORMED_FRAME
    assert driven.session.data_to_send() == driven.sent(
        {"disconnect": agent_pb2.Disconnect(reason=reason, message="malformed envelope")}
    )
    assert driven.session.events_received() == [Closed(reason, "malformed envelope", True, 0.0, by_server=False)]


CLOSERS: dict[str, tuple[CollectorState, Callable[[CollectorSession], None]]] = {
    "server-disconnect": (C.ENABLED, lambda s: s.receive(from_server(disconnect=SERVER_BYE), NOW)),
    "protocol-error": (C.PENDING, lambda s: s.receive(from_server(challenge=CHALLENGE), NOW)),
    "malformed-challenge": (
        C.AWAIT_CHALLENGE,
        lambda s: s.receive(from_server(challenge=agent_pb2.Challenge(nonce=b"", server_instance="")), NOW),
    ),
    "fail": (C.AWAIT_DECISION, lambda s: s.fail(R.DISCONNECT_REASON_INTERNAL_ERROR, "bug")),
    "shutdown": (C.DISABLED, lambda s: s.shutdown()),
    "handshake-timeout": (C.AWAIT_CHALLENGE, lambda s: s.tick(NOW + 100)),
    "heartbeat-timeout": (C.PENDING, lambda s: s.tick(NOW + 1000)),
    "connection-lost": (C.ENABLED, lambda s: s.connection_lost()),
}


@pytest.mark.parametrize("closer", CLOSERS)
def test_closed_session_sends_one_disconnect_at_most_and_nothing_after(closer: str) -> None:
    state, close = CLOSERS[closer]
    session = drive_to(state).session
    close(session)
    sent = session.data_to_send()
    events = session.events_received()
    assert session.closed
    assert [message.WhichOneof("body") for message in sent] in ([], ["disconnect"])
    assert [type(event) for event in events] == [Closed]

    for kind in KINDS:
        session.receive(message_of_kind(kind), NOW + 2)
    session.tick(NOW + 10_000)
    session.fail(R.DISCONNECT_REASON_INTERNAL_ERROR, "too late")
    session.shutdown()
    session.connection_lost()

    assert session.state is C.CLOSED
    assert session.data_to_send() == []
    assert session.events_received() == []
    assert session.next_deadline() is None


def test_collector_numbers_its_messages_one_by_one_from_one() -> None:
    session = new_session()
    session.start(NOW)
    session.receive(from_server(1, challenge=CHALLENGE), NOW)
    session.receive(from_server(2, pending=PENDING), NOW)
    for at in (20, 40, 60):
        session.tick(NOW + at)
        session.receive(from_server(heartbeat_ack=agent_pb2.HeartbeatAck()), NOW + at)
    session.shutdown()

    sent = session.data_to_send()

    assert [message.sequence for message in sent] == [1, 2, 3, 4, 5, 6]
    assert [message.WhichOneof("body") for message in sent] == [
        "hello",
        "proof",
        "heartbeat",
        "heartbeat",
        "heartbeat",
        "disconnect",
    ]


def test_sessions_compare_by_identity_so_a_transport_can_keep_them_in_a_set() -> None:
    first, second = new_session(), new_session()

    assert first != second
    assert len({first, second}) == 2
