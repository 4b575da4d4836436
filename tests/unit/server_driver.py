"""Drive a ServerSession to any state and build the envelopes it should send.

Shared by the server session tests: every helper drains what it caused, so a test sees
only the output of the step under test.
"""

from __future__ import annotations

from dataclasses import dataclass

from outpost.agent.v1 import agent_pb2
from outpost.session.server import (
    ACCEPTED_STATES,
    PROTO_BY_STATE,
    AuthDecision,
    AuthenticationRequested,
    Event,
    ServerSession,
    ServerSessionConfig,
    ServerState,
    SessionClosed,
)
from tests.unit.collector_identity import FINGERPRINT, HELLO, NONCE, SERVER_INSTANCE, SESSION_ID, SIGNATURE

R = agent_pb2.DisconnectReason
CS = agent_pb2.CollectorState
S = ServerState

NOW = 1000.0
HANDSHAKE_TIMEOUT = 10.0
HEARTBEAT = 30.0
LIVENESS = HEARTBEAT * 3  # missed_heartbeats defaults to 3
Body = dict[str, object]


def new_session(heartbeat_interval: float = HEARTBEAT) -> ServerSession:
    config = ServerSessionConfig(
        SERVER_INSTANCE, handshake_timeout=HANDSHAKE_TIMEOUT, heartbeat_interval=heartbeat_interval
    )
    return ServerSession(config, session_id=SESSION_ID, nonce=NONCE, now=NOW)


def from_collector(sequence: int, **body: object) -> agent_pb2.CollectorMessage:
    return agent_pb2.CollectorMessage(sequence=sequence, **body)  # type: ignore[arg-type]


def from_server(sequence: int, **body: object) -> agent_pb2.ServerMessage:
    return agent_pb2.ServerMessage(sequence=sequence, **body)  # type: ignore[arg-type]


def unknown_kind(sequence: int) -> agent_pb2.CollectorMessage:
    """What a newer collector's new body kind (field 40 here) parses as: no known body."""
    data = from_collector(sequence).SerializeToString() + bytes([0xC2, 0x02, 0x00])
    return agent_pb2.CollectorMessage.FromString(data)


COLLECTOR_BYE = agent_pb2.Disconnect(reason=R.DISCONNECT_REASON_CLIENT_SHUTDOWN, message="collector shutting down")
BODIES: dict[str, Body] = {
    "hello": {"hello": HELLO},
    "proof": {"proof": agent_pb2.Proof(signature=SIGNATURE)},
    "heartbeat": {"heartbeat": agent_pb2.Heartbeat()},
    "disconnect": {"disconnect": COLLECTOR_BYE},
    "empty": {},
}
KINDS = [*BODIES, "unknown"]


def message_of_kind(kind: str, sequence: int) -> agent_pb2.CollectorMessage:
    if kind == "unknown":
        return unknown_kind(sequence)
    return from_collector(sequence, **BODIES[kind])


def accept(
    state: ServerState = S.PENDING,
    revision: int = 1,
    *,
    heartbeat_interval: float = HEARTBEAT,
    reason: str = "",
    name: str = "",
    zone: str = "",
) -> AuthDecision:
    return AuthDecision(
        accepted=True,
        state=state,
        fingerprint=FINGERPRINT,
        heartbeat_interval=heartbeat_interval,
        revision=revision,
        reason=reason,
        name=name,
        zone=zone,
    )


@dataclass
class Driven:
    """A session driven to a state with its output drained, and the sequence numbers used."""

    session: ServerSession
    collector_sequence: int
    server_sequence: int

    def feed(self, now: float = NOW, **body: object) -> None:
        self.collector_sequence += 1
        self.session.receive(from_collector(self.collector_sequence, **body), now)

    def sent(self, *bodies: Body) -> list[agent_pb2.ServerMessage]:
        """The envelopes these bodies become as the server's next messages."""
        return [from_server(self.server_sequence + i, **body) for i, body in enumerate(bodies, 1)]


def drive_to(state: ServerState, now: float = NOW) -> Driven:
    driven = Driven(new_session(), 0, 0)
    session = driven.session
    if state is S.CLOSED:
        session.shutdown()
    if state is not S.AWAIT_HELLO and state is not S.CLOSED:
        driven.feed(now, hello=HELLO)
    if state not in (S.AWAIT_HELLO, S.AWAIT_PROOF, S.CLOSED):
        driven.feed(now, proof=agent_pb2.Proof(signature=SIGNATURE))
    if state in ACCEPTED_STATES:
        session.authenticated(accept(state), now)
    assert session.state is state
    driven.server_sequence = len(session.data_to_send())
    session.events_received()
    return driven


def protocol_error(kind: str, state: ServerState) -> tuple[ServerState, list[Body], list[Event]]:
    message = f"unexpected {kind} message in state {state.value}"
    return (
        S.CLOSED,
        [{"disconnect": disconnect(R.DISCONNECT_REASON_PROTOCOL_ERROR, message)}],
        [SessionClosed(R.DISCONNECT_REASON_PROTOCOL_ERROR, message, by_peer=False)],
    )


def disconnect(
    reason: agent_pb2.DisconnectReason, message: str, *, retry: bool = True, retry_after: int = 0
) -> agent_pb2.Disconnect:
    return agent_pb2.Disconnect(reason=reason, message=message, retry=retry, retry_after_seconds=retry_after)


def pending(message: str = "waiting for an admin to register this collector", interval: int = 30) -> Body:
    return {
        "pending": agent_pb2.Pending(
            fingerprint=FINGERPRINT,
            message=message,
            heartbeat_interval_seconds=interval,
            session_id=SESSION_ID,
        )
    }


def welcome(state: ServerState, reason: str = "", interval: int = 30) -> Body:
    return {
        "welcome": agent_pb2.Welcome(
            state=PROTO_BY_STATE[state],
            server_instance=SERVER_INSTANCE,
            heartbeat_interval_seconds=interval,
            session_id=SESSION_ID,
            fingerprint=FINGERPRINT,
            reason=reason,
        )
    }


def state_change(state: ServerState, reason: str, changed_by: str) -> Body:
    return {"state_change": agent_pb2.StateChange(state=PROTO_BY_STATE[state], reason=reason, changed_by=changed_by)}


CHALLENGE: Body = {"challenge": agent_pb2.Challenge(nonce=NONCE, server_instance=SERVER_INSTANCE)}
ACK: Body = {"heartbeat_ack": agent_pb2.HeartbeatAck()}
PEER_CLOSED: list[Event] = [SessionClosed(R.DISCONNECT_REASON_CLIENT_SHUTDOWN, "collector shutting down", by_peer=True)]
AUTH_REQUESTED: list[Event] = [AuthenticationRequested(HELLO, NONCE, SIGNATURE)]
