"""A CollectorSession and a ServerSession linked in memory, driving the whole story.

`pump` carries every envelope across through the real TCP framing and envelope codecs, as
a transport would, until neither side has anything left to send. The test plays the
registry: it checks each proof with `handshake.verify` and answers `authenticated()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from outpost.agent.v1 import agent_pb2
from outpost.session import codec, handshake
from outpost.session.collector import Accepted, Closed, CollectorSession, CollectorState, StateChanged
from outpost.session.collector import Event as CollectorEvent
from outpost.session.server import (
    AuthDecision,
    AuthenticationRequested,
    HeartbeatReceived,
    SequenceGap,
    ServerSession,
    ServerSessionConfig,
    ServerState,
    SessionAccepted,
    SessionClosed,
    StateEntered,
)
from outpost.session.server import Event as ServerEvent
from tests.unit.collector_identity import (
    FINGERPRINT,
    HELLO,
    NONCE,
    OTHER_NONCE,
    PUBLIC_KEY,
    SERVER_INSTANCE,
    sign,
)

R = agent_pb2.DisconnectReason
NOW = 0.0


@dataclass
class Pair:
    collector: CollectorSession
    server: ServerSession
    to_server: codec.FrameDecoder = field(default_factory=codec.FrameDecoder)
    to_collector: codec.FrameDecoder = field(default_factory=codec.FrameDecoder)
    collector_events: list[CollectorEvent] = field(default_factory=list)
    server_events: list[ServerEvent] = field(default_factory=list)

    def pump(self, now: float) -> None:
        """Carry envelopes both ways until both sides are quiet; collect the events."""
        while True:
            upstream = self.collector.data_to_send()
            downstream = self.server.data_to_send()
            if not upstream and not downstream:
                break
            stream = b"".join(codec.encode_frame(m.SerializeToString()) for m in upstream)
            for frame in self.to_server.feed(stream):
                self.server.receive(codec.decode_collector_message(frame), now)
            stream = b"".join(codec.encode_frame(m.SerializeToString()) for m in downstream)
            for frame in self.to_collector.feed(stream):
                self.collector.receive(codec.decode_server_message(frame), now)
        self.collector_events += self.collector.events_received()
        self.server_events += self.server.events_received()

    def take_events(self) -> tuple[list[CollectorEvent], list[ServerEvent]]:
        taken = self.collector_events, self.server_events
        self.collector_events, self.server_events = [], []
        return taken


def connect(nonce: bytes = NONCE, now: float = NOW) -> Pair:
    server = ServerSession(
        ServerSessionConfig(SERVER_INSTANCE, heartbeat_interval=10.0),
        session_id="session-7",
        nonce=nonce,
        now=now,
    )
    pair = Pair(CollectorSession(HELLO, sign, now=now), server)
    pair.collector.start(now)
    pair.pump(now)
    return pair


def registry_decides(request: AuthenticationRequested, state: ServerState) -> AuthDecision:
    """The registry's part: verify the proof over the transcript, then decide."""
    if not handshake.verify(request.hello, request.nonce, SERVER_INSTANCE, request.signature):
        return AuthDecision(accepted=False, message="proof of key possession failed")
    return AuthDecision(
        accepted=True,
        state=state,
        fingerprint=handshake.fingerprint(request.hello.public_key),
        heartbeat_interval=10.0,
        revision=1,
    )


def test_collector_announces_waits_pending_and_follows_every_admin_decision_live() -> None:
    pair = connect()
    [request] = pair.server_events
    assert isinstance(request, AuthenticationRequested)
    assert request.hello == HELLO
    assert pair.take_events() == ([], [request])
    assert (pair.collector.state, pair.server.state) == (
        CollectorState.AWAIT_DECISION,
        ServerState.AUTHENTICATING,
    )

    # announce -> pending
    pair.server.authenticated(registry_decides(request, ServerState.PENDING), 1.0)
    pair.pump(1.0)
    pending_reason = "waiting for an admin to register this collector"
    assert pair.take_events() == (
        [
            Accepted(SERVER_INSTANCE, "session-7", FINGERPRINT),
            StateChanged(CollectorState.PENDING, pending_reason, ""),
        ],
        [
            SessionAccepted(HELLO.instance_uid, HELLO.name, ServerState.PENDING),
            StateEntered(ServerState.PENDING, ""),
        ],
    )
    assert handshake.fingerprint(PUBLIC_KEY) == FINGERPRINT
    assert pair.collector.heartbeat_interval == 10.0

    # heartbeats keep a waiting collector alive for as long as the admin takes
    for now in range(11, 300, 10):
        pair.collector.tick(float(now))
        pair.server.tick(float(now))
        pair.pump(float(now))
    assert (pair.collector.state, pair.server.state) == (
        CollectorState.PENDING,
        ServerState.PENDING,
    )
    collector_events, server_events = pair.take_events()
    assert collector_events == []
    assert server_events and all(isinstance(e, HeartbeatReceived) for e in server_events)

    # an admin registers and enables it: the Welcome arrives on the live session
    pair.server.state_changed(ServerState.ENABLED, "registered by alice", "alice", revision=2)
    pair.pump(300.0)
    assert pair.take_events() == (
        [StateChanged(CollectorState.ENABLED, "registered by alice", "")],
        [StateEntered(ServerState.ENABLED, "registered by alice")],
    )

    # disabled, then enabled again
    pair.server.state_changed(ServerState.DISABLED, "maintenance", "bob", revision=3)
    pair.pump(301.0)
    pair.server.state_changed(ServerState.ENABLED, "back", "bob", revision=4)
    pair.pump(302.0)
    assert pair.take_events() == (
        [
            StateChanged(CollectorState.DISABLED, "maintenance", "bob"),
            StateChanged(CollectorState.ENABLED, "back", "bob"),
        ],
        [
            StateEntered(ServerState.DISABLED, "maintenance"),
            StateEntered(ServerState.ENABLED, "back"),
        ],
    )

    # removed: both ends close; the collector is told not to come back
    pair.server.removed("decommissioned by alice", revision=5)
    pair.pump(303.0)
    assert pair.take_events() == (
        [Closed(R.DISCONNECT_REASON_REMOVED, "decommissioned by alice", False, 0.0, True)],
        [SessionClosed(R.DISCONNECT_REASON_REMOVED, "decommissioned by alice", by_peer=False)],
    )
    assert pair.collector.closed
    assert pair.server.closed
    assert not any(isinstance(e, SequenceGap) for e in pair.server_events)


def test_collector_accepted_straight_into_enabled_gets_a_welcome() -> None:
    pair = connect()
    [request] = pair.take_events()[1]
    assert isinstance(request, AuthenticationRequested)

    pair.server.authenticated(registry_decides(request, ServerState.ENABLED), 1.0)
    pair.pump(1.0)

    assert pair.take_events()[0] == [
        Accepted(SERVER_INSTANCE, "session-7", FINGERPRINT),
        StateChanged(CollectorState.ENABLED, "registered by an admin", ""),
    ]
    assert (pair.collector.state, pair.server.state) == (
        CollectorState.ENABLED,
        ServerState.ENABLED,
    )


def test_admin_sending_a_registered_collector_back_to_pending_reaches_it_live() -> None:
    pair = connect()
    [request] = pair.take_events()[1]
    assert isinstance(request, AuthenticationRequested)
    pair.server.authenticated(registry_decides(request, ServerState.ENABLED), 1.0)
    pair.pump(1.0)
    pair.take_events()

    pair.server.state_changed(ServerState.PENDING, "re-approval needed", "alice", revision=2)
    pair.pump(2.0)

    assert pair.take_events() == (
        [StateChanged(CollectorState.PENDING, "re-approval needed", "")],
        [StateEntered(ServerState.PENDING, "re-approval needed")],
    )
    assert not pair.collector.closed


def test_both_ends_give_up_on_a_silent_peer_after_three_heartbeat_intervals() -> None:
    pair = connect()
    [request] = pair.take_events()[1]
    assert isinstance(request, AuthenticationRequested)
    pair.server.authenticated(registry_decides(request, ServerState.ENABLED), 1.0)
    pair.pump(1.0)
    pair.take_events()

    pair.collector.tick(31.0)  # the server never hears from it again
    pair.server.tick(31.0)

    assert pair.server.closed
    assert pair.collector.closed
    assert [type(e) for e in pair.collector.events_received()] == [Closed]
    assert [type(e) for e in pair.server.events_received()] == [SessionClosed]


def test_replayed_proof_against_a_new_nonce_fails_verification_and_is_refused() -> None:
    first = connect(NONCE)
    [recorded] = first.take_events()[1]
    assert isinstance(recorded, AuthenticationRequested)
    assert handshake.verify(recorded.hello, NONCE, SERVER_INSTANCE, recorded.signature)

    # an attacker replays the recorded hello and proof to a fresh session
    replay = ServerSession(ServerSessionConfig(SERVER_INSTANCE), session_id="session-8", nonce=OTHER_NONCE, now=NOW)
    replay.receive(agent_pb2.CollectorMessage(sequence=1, hello=recorded.hello), NOW)
    replay.receive(
        agent_pb2.CollectorMessage(sequence=2, proof=agent_pb2.Proof(signature=recorded.signature)),
        NOW,
    )
    [request] = replay.events_received()
    assert isinstance(request, AuthenticationRequested)
    assert request.nonce == OTHER_NONCE

    decision = registry_decides(request, ServerState.ENABLED)
    replay.authenticated(decision, NOW)

    assert not handshake.verify(request.hello, request.nonce, SERVER_INSTANCE, request.signature)
    assert replay.state is ServerState.CLOSED
    sent = replay.data_to_send()
    assert [m.WhichOneof("body") for m in sent] == ["challenge", "disconnect"]
    assert sent[-1].disconnect == agent_pb2.Disconnect(
        reason=R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
        message="proof of key possession failed",
        retry=True,
    )
    assert replay.events_received() == [
        SessionClosed(
            R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
            "proof of key possession failed",
            by_peer=False,
        )
    ]
