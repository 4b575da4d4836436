"""The collector end of a session, free of I/O.

Theory of operation
-------------------
`start()` sends the Hello. The server answers with a Challenge; the collector refuses a
server instance other than the one it is bound to (a collector belongs to one server
instance until reinstalled), otherwise signs the transcript and sends its Proof (with a
SCRAM proof of the service password for each parameter set the Challenge offered, ADR 0025). Then a
Pending (waiting for an admin) or a Welcome (registered: enabled or disabled) moves it to
its accepted state, emitting `Accepted` so the transport can record the binding; later
StateChange, Welcome and Pending messages move it between PENDING, ENABLED and DISABLED,
each emitting `StateChanged` for the log. A Disconnect closes the session with the
server's reason and retry hint. `tick()` sends heartbeats on time and gives up on a server
that has gone silent.

Every message the server sends outside the states that allow it closes the session with
a PROTOCOL_ERROR Disconnect; unknown body kinds from a newer server are ignored. Calling
`receive()` before `start()` is a LocalProtocolError (a bug in the transport). Once
CLOSED, a session sends nothing and emits nothing more.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from outpost.session.errors import LocalProtocolError, RemoteProtocolError

R = agent_pb2.DisconnectReason
CS = agent_pb2.CollectorState


class CollectorState(enum.Enum):
    IDLE = "idle"
    AWAIT_CHALLENGE = "await_challenge"
    AWAIT_DECISION = "await_decision"
    PENDING = "pending"
    ENABLED = "enabled"
    DISABLED = "disabled"
    CLOSED = "closed"


HANDSHAKE_STATES = frozenset({CollectorState.AWAIT_CHALLENGE, CollectorState.AWAIT_DECISION})
ACCEPTED_STATES = frozenset({CollectorState.PENDING, CollectorState.ENABLED, CollectorState.DISABLED})

# Which server message kinds each state accepts; anything else is a protocol error.
# A registered collector an admin sends back to pending gets a Pending; a pending one
# that an admin registers gets a Welcome.
ALLOWED_KINDS: dict[CollectorState, frozenset[str]] = {
    CollectorState.IDLE: frozenset(),
    CollectorState.AWAIT_CHALLENGE: frozenset({"challenge", "disconnect"}),
    CollectorState.AWAIT_DECISION: frozenset({"pending", "welcome", "disconnect"}),
    CollectorState.PENDING: frozenset(
        {"pending", "welcome", "heartbeat_ack", "disconnect", "config_update", "rotation"}
    ),
    CollectorState.ENABLED: frozenset(
        {"pending", "state_change", "heartbeat_ack", "disconnect", "config_update", "rotation"}
        | {"job_assignment", "job_cancel", "batch_ack", "throttle"}
    ),
    CollectorState.DISABLED: frozenset(
        {"pending", "state_change", "heartbeat_ack", "disconnect", "config_update", "rotation"}
        | {"job_cancel", "batch_ack", "throttle"}
    ),
    CollectorState.CLOSED: frozenset(),
}

STATE_BY_PROTO = {
    CS.COLLECTOR_STATE_PENDING: CollectorState.PENDING,
    CS.COLLECTOR_STATE_ENABLED: CollectorState.ENABLED,
    CS.COLLECTOR_STATE_DISABLED: CollectorState.DISABLED,
}


@dataclass(frozen=True)
class Accepted:
    """The server took the handshake; record `server_instance` as this collector's binding."""

    server_instance: str
    session_id: str
    fingerprint: str


@dataclass(frozen=True)
class StateChanged:
    """The collector entered PENDING, ENABLED or DISABLED; only ENABLED may work."""

    state: CollectorState
    reason: str
    changed_by: str


@dataclass(frozen=True)
class Closed:
    """The session is over; reconnect only if `retry`, after at least `retry_after` s."""

    reason: agent_pb2.DisconnectReason
    message: str
    retry: bool
    retry_after: float
    by_server: bool


@dataclass(frozen=True)
class JobAssigned:
    """Run this discovery job; report with `send_job_update()`/`send_result_batch()`."""

    assignment: agent_pb2.JobAssignment


@dataclass(frozen=True)
class JobCancelled:
    job_run_id: str
    reason: str
    attempt: int = 0


@dataclass(frozen=True)
class BatchAcked:
    """The server committed this batch: it may be deleted from the spool."""

    job_run_id: str
    sequence: int
    attempt: int = 0


@dataclass(frozen=True)
class Throttled:
    """The server cannot commit results now: hold batches for `retry_after` seconds, then
    send every unacknowledged one again."""

    retry_after: float
    reason: str


@dataclass(frozen=True)
class ConfigChanged:
    config: agent_pb2.ConfigUpdate


@dataclass(frozen=True)
class RotationReceived:
    """The server announced a credential rotation (ADR 0024): the sealed transport stores it."""

    rotation: agent_pb2.Rotation


Event = (
    Accepted
    | StateChanged
    | Closed
    | JobAssigned
    | JobCancelled
    | BatchAcked
    | Throttled
    | ConfigChanged
    | RotationReceived
)


@dataclass(eq=False)
class CollectorSession:
    """One connection attempt, collector side.

    `sign` signs a handshake transcript with the collector's private key. Call `start()`
    once the connection is up, then feed it; sessions compare by identity.
    """

    hello: agent_pb2.Hello
    sign: Callable[[bytes], bytes]
    now: float
    handshake_timeout: float = 15.0
    heartbeat_interval: float = 30.0
    missed_heartbeats: float = 3.0
    # The sealed session's Noise handshake hash: the proof signs it too (channel binding,
    # ADR 0019); empty on an unsealed session.
    channel_binding: bytes = b""
    # Answers a Challenge's password parameters (ADR 0025): (offered sets, handshake
    # transcript) -> one ClientProof each, or RemoteProtocolError for sets it refuses (costs
    # above its caps). None: the collector proves no password (a challenge offering some is
    # answered without proofs, and the server refuses it if it holds a credential).
    password_proofs: Callable[[Sequence[agent_pb2.PasswordParameters], bytes], list[bytes]] | None = None
    state: CollectorState = CollectorState.IDLE
    server_instance: str = ""
    session_id: str = ""
    last_received: float = 0.0
    _next_heartbeat: float = 0.0
    _send_sequence: int = 0
    _outgoing: list[agent_pb2.CollectorMessage] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list)
    _handshake_deadline: float = 0.0

    def start(self, now: float) -> None:
        """Send the Hello; LocalProtocolError if called twice."""
        if self.state is not CollectorState.IDLE:
            raise LocalProtocolError("start() twice")
        self.state = CollectorState.AWAIT_CHALLENGE
        self.last_received = now
        self._handshake_deadline = now + self.handshake_timeout
        self._send(hello=self.hello)

    def receive(self, message: agent_pb2.ServerMessage, now: float) -> None:
        """Feed one decoded envelope from the server."""
        if self.state is CollectorState.IDLE:
            raise LocalProtocolError("receive() before start()")
        if self.state is CollectorState.CLOSED:
            return
        self.last_received = now
        kind = message.WhichOneof("body")
        if kind is None:
            return  # a newer server's message kind: ignore
        try:
            if kind not in ALLOWED_KINDS[self.state]:
                raise RemoteProtocolError(
                    R.DISCONNECT_REASON_PROTOCOL_ERROR,
                    f"unexpected {kind} message in state {self.state.value}",
                )
            getattr(self, f"_on_{kind}")(getattr(message, kind), now)
        except RemoteProtocolError as exc:
            self.fail(exc.reason, exc.message)

    # --- work ---------------------------------------------------------------------------
    def send_job_update(self, update: agent_pb2.JobUpdate) -> bool:
        """Queue a run's progress or end; only a registered session carries it."""
        if self.state not in (CollectorState.ENABLED, CollectorState.DISABLED):
            return False
        self._send(job_update=update)
        return True

    def send_key_rotation(self, rotation: agent_pb2.KeyRotation) -> bool:
        """Queue a request to replace the identity key (ADR 0024); only a registered session
        carries one (the registry refuses a pending collector's, see its `key_rotation`)."""
        if self.state not in (CollectorState.ENABLED, CollectorState.DISABLED):
            return False
        self._send(key_rotation=rotation)
        return True

    def send_result_batch(self, batch: agent_pb2.ResultBatch) -> bool:
        """Queue results; only an ENABLED session carries them (the server refuses others)."""
        if self.state is not CollectorState.ENABLED:
            return False
        self._send(result_batch=batch)
        return True

    def heartbeat_due(self, now: float) -> bool:
        """Whether `tick(now)` sends a heartbeat.

        What a heartbeat carries (the spool, the runs held) is the collector's to gather,
        with I/O the core does not do: the caller asks this first, gathers them only then
        (gathering counts the heartbeat as sent) and passes them to `tick`.
        """
        return self.state in ACCEPTED_STATES and self._next_heartbeat <= now < self._liveness_deadline()

    def tick(self, now: float, heartbeat: agent_pb2.Heartbeat | None = None) -> None:
        """Send a heartbeat when due and enforce deadlines; call at `next_deadline()`.

        `heartbeat`: what a heartbeat sent now carries (see `heartbeat_due`); None sends an
        empty one.
        """
        if self.state in HANDSHAKE_STATES and now >= self._handshake_deadline:
            self._close(
                R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT,
                f"server did not complete the handshake within {self.handshake_timeout:g}s",
            )
        elif self.state in ACCEPTED_STATES:
            if now >= self._liveness_deadline():
                self._close(R.DISCONNECT_REASON_HEARTBEAT_TIMEOUT, "server stopped answering heartbeats")
            elif now >= self._next_heartbeat:
                self._send(heartbeat=heartbeat if heartbeat is not None else agent_pb2.Heartbeat())
                self._next_heartbeat = now + self.heartbeat_interval

    def fail(self, reason: agent_pb2.DisconnectReason, message: str) -> None:
        """Close because of something the transport or server did; retrying may help."""
        self._close(reason, message)

    def shutdown(self) -> None:
        """Close because the collector is stopping: tell the server, do not reconnect."""
        self._close(R.DISCONNECT_REASON_CLIENT_SHUTDOWN, "collector shutting down", retry=False)

    def connection_lost(self) -> None:
        """The transport saw the connection end without a Disconnect."""
        if self.state is not CollectorState.CLOSED:
            self.state = CollectorState.CLOSED
            self._events.append(
                Closed(
                    R.DISCONNECT_REASON_UNAVAILABLE,
                    "connection lost",
                    retry=True,
                    retry_after=0.0,
                    by_server=False,
                )
            )

    def data_to_send(self) -> list[agent_pb2.CollectorMessage]:
        """Envelopes to write, in order; each call returns only new ones."""
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[Event]:
        """Events for the service, in order; each call returns only new ones."""
        out, self._events = self._events, []
        return out

    @property
    def closed(self) -> bool:
        """True once the session is over: send what is left, then close the connection."""
        return self.state is CollectorState.CLOSED

    def next_deadline(self) -> float | None:
        """When to call `tick()` next; None before start and once closed."""
        if self.state in HANDSHAKE_STATES:
            return self._handshake_deadline
        if self.state in ACCEPTED_STATES:
            return min(self._next_heartbeat, self._liveness_deadline())
        return None

    # --- handlers ---------------------------------------------------------------------
    def _on_challenge(self, challenge: agent_pb2.Challenge, now: float) -> None:
        if not challenge.server_instance:
            raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, "challenge without a server instance")
        bound = self.hello.bound_server_instance
        if bound and challenge.server_instance != bound:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE,
                f"this collector is bound to server instance {bound}, "
                f"not {challenge.server_instance}; "
                "reinstall it (fresh data directory) to move it",
            )
        if len(challenge.nonce) != handshake.NONCE_BYTES:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"challenge nonce must be {handshake.NONCE_BYTES} bytes",
            )
        self.server_instance = challenge.server_instance
        transcript = handshake.transcript(self.hello, challenge.nonce, challenge.server_instance, self.channel_binding)
        proofs: list[bytes] = []
        if challenge.password_parameters and self.password_proofs is not None:
            proofs = self.password_proofs(challenge.password_parameters, transcript)
        signature = self.sign(transcript)
        self.state = CollectorState.AWAIT_DECISION
        self._send(proof=agent_pb2.Proof(signature=signature, password_proofs=proofs))

    def _on_pending(self, pending: agent_pb2.Pending, now: float) -> None:
        previous = self.state
        self._accept(
            pending.session_id,
            pending.fingerprint,
            pending.heartbeat_interval_seconds,
            now,
            first=previous is CollectorState.AWAIT_DECISION,
        )
        self.state = CollectorState.PENDING
        if previous is not CollectorState.PENDING:
            self._events.append(StateChanged(CollectorState.PENDING, pending.message, ""))

    def _on_welcome(self, welcome: agent_pb2.Welcome, now: float) -> None:
        state = STATE_BY_PROTO.get(welcome.state)
        if state is None or state is CollectorState.PENDING:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR, "welcome without an enabled or disabled state"
            )
        if welcome.server_instance and welcome.server_instance != self.server_instance:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"welcome from server instance {welcome.server_instance}, "
                f"but the challenge came from {self.server_instance}",
            )
        self._accept(
            welcome.session_id,
            welcome.fingerprint,
            welcome.heartbeat_interval_seconds,
            now,
            first=self.state is CollectorState.AWAIT_DECISION,
        )
        self.state = state
        self._events.append(StateChanged(state, welcome.reason or "registered by an admin", ""))

    def _on_state_change(self, change: agent_pb2.StateChange, now: float) -> None:
        state = STATE_BY_PROTO.get(change.state)
        if state is None or state is CollectorState.PENDING:
            raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, "state change to an unknown or pending state")
        self.state = state
        self._events.append(StateChanged(state, change.reason, change.changed_by))

    def _on_job_assignment(self, assignment: agent_pb2.JobAssignment, now: float) -> None:
        if not assignment.job_run_id:
            raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, "job assignment without a job run id")
        self._events.append(JobAssigned(assignment))

    def _on_job_cancel(self, cancel: agent_pb2.JobCancel, now: float) -> None:
        self._events.append(JobCancelled(cancel.job_run_id, cancel.reason, cancel.attempt))

    def _on_batch_ack(self, ack: agent_pb2.BatchAck, now: float) -> None:
        self._events.append(BatchAcked(ack.job_run_id, ack.sequence, ack.attempt))

    def _on_throttle(self, throttle: agent_pb2.Throttle, now: float) -> None:
        self._events.append(Throttled(throttle.retry_after_ms / 1000.0, throttle.reason))

    def _on_config_update(self, config: agent_pb2.ConfigUpdate, now: float) -> None:
        if config.heartbeat_interval_seconds:
            self.heartbeat_interval = float(config.heartbeat_interval_seconds)
        self._events.append(ConfigChanged(config))

    def _on_rotation(self, rotation: agent_pb2.Rotation, now: float) -> None:
        self._events.append(RotationReceived(rotation))

    def _on_heartbeat_ack(self, _: agent_pb2.HeartbeatAck, now: float) -> None:
        pass  # receive() already counted it as a sign of life

    def _on_disconnect(self, disconnect: agent_pb2.Disconnect, now: float) -> None:
        self.state = CollectorState.CLOSED
        self._events.append(
            Closed(
                disconnect.reason,
                disconnect.message,
                disconnect.retry,
                float(disconnect.retry_after_seconds),
                by_server=True,
            )
        )

    # --- internals --------------------------------------------------------------------
    def _accept(self, session_id: str, fingerprint: str, heartbeat_seconds: int, now: float, *, first: bool) -> None:
        if heartbeat_seconds:
            self.heartbeat_interval = float(heartbeat_seconds)
        self._next_heartbeat = now + self.heartbeat_interval
        if first:
            self.session_id = session_id
            self._events.append(Accepted(self.server_instance, session_id, fingerprint))

    def _liveness_deadline(self) -> float:
        return self.last_received + self.heartbeat_interval * self.missed_heartbeats

    def _close(self, reason: agent_pb2.DisconnectReason, message: str, *, retry: bool = True) -> None:
        """Tell the server why (once the Hello is out), then close."""
        if self.state is CollectorState.CLOSED:
            return
        if self.state is not CollectorState.IDLE:
            self._send(disconnect=agent_pb2.Disconnect(reason=reason, message=message))
        self.state = CollectorState.CLOSED
        self._events.append(Closed(reason, message, retry, 0.0, by_server=False))

    def _send(self, **body: object) -> None:
        self._send_sequence += 1
        self._outgoing.append(agent_pb2.CollectorMessage(sequence=self._send_sequence, **body))  # type: ignore[arg-type]
