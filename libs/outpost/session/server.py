"""The server end of a collector session, free of I/O.

Theory of operation
-------------------
A session starts in AWAIT_HELLO. The hello is checked (protocol version, required
identity fields, field sizes) and answered with a Challenge over a nonce the transport
supplied (with `password_parameters` configured, the session first emits
`ChallengeRequested` and the transport calls `challenge()` with the collector's
service-password parameters, ADR 0025); the collector's Proof moves the session to AUTHENTICATING and emits
`AuthenticationRequested`. The transport asks the registry, then calls `authenticated()`
with the decision: refused sessions get a Disconnect and close; accepted ones enter
PENDING (a Pending message) or ENABLED/DISABLED (a Welcome). From then on the registry's
decisions arrive through `state_changed()`/`removed()`: a pending collector that an admin
registers gets its Welcome on the live session (no reconnect), a registered one gets a
StateChange (or a Pending if an admin sends it back to pending), a removed one a
Disconnect. Heartbeats keep the session alive; `tick()` enforces the handshake and
heartbeat deadlines.

Registry decisions carry a revision and only a newer revision than the one the session
holds has any effect, so a late or replayed watch event cannot undo a newer decision. A
decision that arrives while the handshake is still running is remembered and applied by
`authenticated()` if it is newer than the registry's answer, so an admin's click during
the handshake is never lost.

Only ENABLED sessions may ever be given work; PENDING and DISABLED receive nothing but
their state. Unknown body kinds from a newer collector are ignored. Every message the
collector sends outside the states that allow it is a RemoteProtocolError that closes the
session with a reason: the process keeps serving everyone else. Calling the session's
methods in a state where our own code should never call them is a LocalProtocolError.
Once CLOSED, a session sends nothing and emits nothing more.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from outpost import sealing
from outpost.agent.v1 import agent_pb2
from outpost.session import handshake
from outpost.session.errors import LocalProtocolError, RemoteProtocolError
from outpost.version import PROTOCOL_VERSION

R = agent_pb2.DisconnectReason
CS = agent_pb2.CollectorState

REQUIRED_HELLO_FIELDS = ("instance_uid", "name", "username", "password_verifier")
OPTIONAL_HELLO_FIELDS = ("zone", "version", "bound_server_instance", "enrollment_token")
MAX_FIELD_CHARS = 256
MAX_VERIFIER_CHARS = 512
MAX_CAPABILITIES = 64
SIGNATURE_BYTES = 64
PASSWORD_PROOF_BYTES = 32
MAX_PASSWORD_PARAMETER_SETS = 2
"""The current service-password credential and, during a rotation's overlap, the previous one."""


class ServerState(enum.Enum):
    AWAIT_HELLO = "await_hello"
    AWAIT_PROOF = "await_proof"
    AUTHENTICATING = "authenticating"
    PENDING = "pending"
    ENABLED = "enabled"
    DISABLED = "disabled"
    CLOSED = "closed"


HANDSHAKE_STATES = frozenset({ServerState.AWAIT_HELLO, ServerState.AWAIT_PROOF, ServerState.AUTHENTICATING})
ACCEPTED_STATES = frozenset({ServerState.PENDING, ServerState.ENABLED, ServerState.DISABLED})

# Which collector message kinds each state accepts; anything else is a protocol error.
# "disconnect" is accepted everywhere but CLOSED, and unknown kinds are ignored.
ALLOWED_KINDS: dict[ServerState, frozenset[str]] = {
    ServerState.AWAIT_HELLO: frozenset({"hello", "disconnect"}),
    ServerState.AWAIT_PROOF: frozenset({"proof", "disconnect"}),
    ServerState.AUTHENTICATING: frozenset({"heartbeat", "disconnect"}),
    ServerState.PENDING: frozenset({"heartbeat", "disconnect", "job_update", "result_batch", "key_rotation"}),
    ServerState.ENABLED: frozenset({"heartbeat", "disconnect", "job_update", "result_batch", "key_rotation"}),
    ServerState.DISABLED: frozenset({"heartbeat", "disconnect", "job_update", "result_batch", "key_rotation"}),
    ServerState.CLOSED: frozenset(),
}

STATE_BY_PROTO = {
    CS.COLLECTOR_STATE_PENDING: ServerState.PENDING,
    CS.COLLECTOR_STATE_ENABLED: ServerState.ENABLED,
    CS.COLLECTOR_STATE_DISABLED: ServerState.DISABLED,
}
PROTO_BY_STATE = {state: proto for proto, state in STATE_BY_PROTO.items()}

# Refusals that reconnecting cannot fix; every other close tells the collector to retry
# (slowly, for refusals an operator must fix first: the operator may fix them).
NO_RETRY_REASONS = frozenset({R.DISCONNECT_REASON_UNSUPPORTED_VERSION})


# --- events the transport acts on -------------------------------------------------------
@dataclass(frozen=True)
class ChallengeRequested:
    """A hello arrived (only with `ServerSessionConfig.password_parameters`): fetch the
    collector's service-password parameters, then call `challenge()` (ADR 0025)."""

    hello: agent_pb2.Hello


@dataclass(frozen=True)
class AuthenticationRequested:
    """Ask the registry to decide this handshake, then call `authenticated()`."""

    hello: agent_pb2.Hello
    nonce: bytes
    signature: bytes
    password_parameters: tuple[agent_pb2.PasswordParameters, ...] = ()
    """What the Challenge offered; `password_proofs` answers each, in order (ADR 0025)."""
    password_proofs: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SessionAccepted:
    """The handshake was accepted; `state` is the state the session entered."""

    instance_uid: str
    name: str
    state: ServerState
    zone: str = ""
    """The registered name and zone (the registry's), never the hello's."""
    hello: agent_pb2.Hello | None = field(default=None, compare=False, repr=False)
    """The Hello the session was accepted on: the last the session offers of it, since
    the core lets it go on acceptance (a kept Hello cost every idle session ~1.3 KiB)."""


@dataclass(frozen=True)
class StateEntered:
    """The session entered PENDING, ENABLED or DISABLED (and told the collector)."""

    state: ServerState
    reason: str


@dataclass(frozen=True)
class SequenceGap:
    """The collector's sequence number was not the previous one plus one."""

    expected: int
    received: int


@dataclass(frozen=True)
class SessionClosed:
    """The session is over; the transport closes the connection after sending."""

    reason: agent_pb2.DisconnectReason
    message: str
    by_peer: bool


@dataclass(frozen=True)
class JobUpdateReceived:
    """A registered collector reported a run's progress or end; forward it to the scheduler."""

    update: agent_pb2.JobUpdate


@dataclass(frozen=True)
class ResultBatchReceived:
    """An enabled collector sent results: commit them, then call `ack_batch()`."""

    batch: agent_pb2.ResultBatch


@dataclass(frozen=True)
class HeartbeatReceived:
    """A heartbeat from an accepted collector: its spool and the runs it is executing."""

    heartbeat: agent_pb2.Heartbeat


@dataclass(frozen=True)
class KeyRotationReceived:
    """An accepted collector asks to replace its identity key (ADR 0024): have the registry
    decide it, then answer with `rotate(Rotation(key_rotation=...))`. The session goes on."""

    rotation: agent_pb2.KeyRotation


@dataclass(frozen=True)
class WorkRefused:
    """Work traffic from a collector that may not work now (pending, or results while
    disabled): not a protocol error (it may have been in flight when an admin acted), but
    nothing is accepted and nothing is acknowledged."""

    kind: str
    job_run_id: str
    state: ServerState


Event = (
    ChallengeRequested
    | AuthenticationRequested
    | SessionAccepted
    | StateEntered
    | SequenceGap
    | SessionClosed
    | JobUpdateReceived
    | ResultBatchReceived
    | HeartbeatReceived
    | KeyRotationReceived
    | WorkRefused
)


@dataclass(frozen=True)
class AuthDecision:
    """The registry's answer, as plain values (the transport converts from protobuf).

    `state` must be PENDING, ENABLED or DISABLED when `accepted`; `refusal` and `message`
    are what a refused collector is told.
    """

    accepted: bool
    state: ServerState = ServerState.PENDING
    refusal: agent_pb2.DisconnectReason = R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    message: str = ""
    fingerprint: str = ""
    heartbeat_interval: float = 30.0
    revision: int = 0
    reason: str = ""
    retry_after: int = 0
    """When refused: whole seconds before another attempt can succeed (0: no hint)."""
    name: str = ""
    zone: str = ""
    """When accepted: the collector's name and zone as the registry holds them (the admin's
    decision). The session uses these, never the hello's; an empty name means the hello's
    (a registry that predates canonical identities)."""


@dataclass
class ServerSessionConfig:
    server_instance: str
    handshake_timeout: float = 10.0
    # Sent to the collector in whole seconds, so it is rounded up to at least 1s.
    heartbeat_interval: float = 30.0
    # A session with no message for this many heartbeat intervals is dead.
    missed_heartbeats: float = 3.0
    # The Challenge waits for `challenge()` with the collector's service-password parameters
    # (ADR 0025; the gateway fetches them from the registry after the Hello). False: the
    # Challenge goes out at once and offers none (tests and tools without a registry).
    password_parameters: bool = False


@dataclass(frozen=True)
class _Change:
    """A registry decision that arrived during the handshake (state None: removed)."""

    state: ServerState | None
    reason: str
    changed_by: str
    revision: int


@dataclass(eq=False, slots=True)
class ServerSession:
    """One collector connection, server side. Feed it; drain `data_to_send`/`events_received`.

    `nonce` is 32 fresh random bytes from the transport; `now` is the transport's clock
    (any monotonic float in seconds) at connection time. Sessions compare by identity, so
    a transport may keep them in sets and dicts.
    """

    config: ServerSessionConfig
    session_id: str
    nonce: bytes
    now: float
    state: ServerState = ServerState.AWAIT_HELLO
    hello: agent_pb2.Hello | None = None
    """The collector's Hello while the handshake needs it; None before it and once accepted."""
    hello_received: bool = False
    revision: int = 0
    last_received: float = 0.0
    fingerprint: str = ""
    _send_sequence: int = 0
    _receive_sequence: int = 0
    _outgoing: list[agent_pb2.ServerMessage] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list)
    _handshake_deadline: float = 0.0
    _heartbeat_interval: float = 0.0
    _change_during_handshake: _Change | None = None
    _challenged: bool = False
    _offered: tuple[agent_pb2.PasswordParameters, ...] = ()

    def __post_init__(self) -> None:
        if len(self.nonce) != handshake.NONCE_BYTES:
            raise LocalProtocolError(f"nonce must be {handshake.NONCE_BYTES} random bytes")
        self._handshake_deadline = self.now + self.config.handshake_timeout
        self._heartbeat_interval = _wire_interval(self.config.heartbeat_interval)
        self.last_received = self.now

    # --- inputs ---------------------------------------------------------------------
    def receive(self, message: agent_pb2.CollectorMessage, now: float) -> None:
        """Feed one decoded envelope from the collector."""
        if self.state is ServerState.CLOSED:
            return
        self.last_received = now
        self._check_sequence(message.sequence)
        kind = message.WhichOneof("body")
        if kind is None:
            return  # a newer collector's message kind: ignore, never fail
        try:
            if kind not in ALLOWED_KINDS[self.state]:
                raise RemoteProtocolError(
                    R.DISCONNECT_REASON_PROTOCOL_ERROR,
                    f"unexpected {kind} message in state {self.state.value}",
                )
            handler = getattr(self, f"_on_{kind}")
            handler(getattr(message, kind), now)
        except RemoteProtocolError as exc:
            self.fail(exc.reason, exc.message)

    def authenticated(self, decision: AuthDecision, now: float) -> None:
        """The registry's decision on the handshake requested by `AuthenticationRequested`.

        A newer decision that arrived through `state_changed()`/`removed()` during the
        handshake wins over this one. Raises LocalProtocolError unless the session is
        AUTHENTICATING (or already CLOSED, when the decision is moot).
        """
        if self.state is ServerState.CLOSED:
            return
        if self.state is not ServerState.AUTHENTICATING:
            raise LocalProtocolError(f"authenticated() in state {self.state.value}")
        if decision.accepted and decision.state not in ACCEPTED_STATES:
            raise LocalProtocolError(f"cannot accept a session into {decision.state.value}")
        if not decision.accepted:
            self._close(
                decision.refusal,
                decision.message or "the server refused this collector",
                by_peer=False,
                retry=decision.refusal not in NO_RETRY_REASONS,
                retry_after=decision.retry_after,
            )
            return
        assert self.hello is not None
        state, reason, revision = decision.state, decision.reason, decision.revision
        change = self._change_during_handshake
        self._change_during_handshake = None
        if change is not None and change.revision > revision:
            if change.state is None:
                self._close_removed(change.reason)
                return
            state, reason, revision = change.state, change.reason, change.revision
        self.revision = revision
        self._heartbeat_interval = _wire_interval(decision.heartbeat_interval or self.config.heartbeat_interval)
        self.fingerprint = decision.fingerprint
        self.last_received = max(self.last_received, now)
        hello, self.hello, self._offered = self.hello, None, ()
        name = decision.name or hello.name
        self._events.append(SessionAccepted(hello.instance_uid, name, state, decision.zone, hello))
        self._enter(state, reason, changed_by="", first=True)

    def state_changed(self, state: ServerState, reason: str, changed_by: str, revision: int) -> None:
        """An admin's decision from the registry watch; stale revisions are ignored.

        `state` must be PENDING, ENABLED or DISABLED (LocalProtocolError otherwise).
        """
        if state not in ACCEPTED_STATES:
            raise LocalProtocolError(f"state_changed() to {state.value}")
        if self.state in HANDSHAKE_STATES:
            self._remember(_Change(state, reason, changed_by, revision))
            return
        if self.state not in ACCEPTED_STATES or revision <= self.revision:
            return
        self.revision = revision
        if state is not self.state:
            self._enter(state, reason, changed_by, first=False)

    def removed(self, reason: str, revision: int) -> None:
        """An admin removed the collector: close with REMOVED, telling it not to retry."""
        if self.state in HANDSHAKE_STATES:
            self._remember(_Change(None, reason, "", revision))
        elif self.state in ACCEPTED_STATES and revision > self.revision:
            self.revision = revision
            self._close_removed(reason)

    def challenge(self, password_parameters: Sequence[agent_pb2.PasswordParameters] = ()) -> None:
        """Send the Challenge requested by `ChallengeRequested`, offering these parameter sets.

        Raises LocalProtocolError unless a Challenge is awaited (or the session is CLOSED,
        when it is moot), or for more sets than `MAX_PASSWORD_PARAMETER_SETS`.
        """
        if self.state is ServerState.CLOSED:
            return
        if self.state is not ServerState.AWAIT_PROOF or self._challenged:
            raise LocalProtocolError(f"challenge() in state {self.state.value}")
        if len(password_parameters) > MAX_PASSWORD_PARAMETER_SETS:
            raise LocalProtocolError(f"at most {MAX_PASSWORD_PARAMETER_SETS} password parameter sets")
        self._offered = tuple(password_parameters)
        self._challenged = True
        self._send(
            challenge=agent_pb2.Challenge(
                nonce=self.nonce,
                server_instance=self.config.server_instance,
                password_parameters=self._offered,
            )
        )

    # --- work ---------------------------------------------------------------------------
    def assign_job(self, assignment: agent_pb2.JobAssignment) -> bool:
        """Send a run to the collector; only an ENABLED session is ever given work."""
        if self.state is not ServerState.ENABLED:
            return False
        self._send(job_assignment=assignment)
        return True

    def cancel_job(self, job_run_id: str, reason: str, attempt: int = 0) -> bool:
        """Stop a run on the collector; `attempt` 0 stops whichever attempt it runs."""
        if self.state not in (ServerState.ENABLED, ServerState.DISABLED):
            return False
        self._send(job_cancel=agent_pb2.JobCancel(job_run_id=job_run_id, reason=reason, attempt=attempt))
        return True

    def ack_batch(self, job_run_id: str, sequence: int, attempt: int = 0) -> bool:
        """Acknowledge a batch once it is committed; the collector may then forget it."""
        if self.state not in ACCEPTED_STATES:
            return False
        self._send(batch_ack=agent_pb2.BatchAck(job_run_id=job_run_id, sequence=sequence, attempt=attempt))
        return True

    def throttle(self, retry_after_ms: int, reason: str) -> bool:
        """Tell the collector to hold its results for a while (they stay in its spool)."""
        if self.state not in (ServerState.ENABLED, ServerState.DISABLED):
            return False
        self._send(throttle=agent_pb2.Throttle(retry_after_ms=max(0, int(retry_after_ms)), reason=reason))
        return True

    def update_config(self, config: agent_pb2.ConfigUpdate) -> bool:
        """Send settings to the collector; False (nothing sent) before it is accepted.

        A new `heartbeat_interval_seconds` (not 0) is this session's from now on too, so
        the liveness deadline follows the interval the collector was told.
        """
        if self.state not in ACCEPTED_STATES:
            return False
        if config.heartbeat_interval_seconds:
            self._heartbeat_interval = _wire_interval(config.heartbeat_interval_seconds)
        self._send(config_update=config)
        return True

    def rotate(self, rotation: agent_pb2.Rotation) -> bool:
        """Tell the collector about a credential rotation (ADR 0024); False (nothing sent) before
        it is accepted. Only a sealed session may carry one: the transport decides that."""
        if self.state not in ACCEPTED_STATES:
            return False
        self._send(rotation=rotation)
        return True

    def tick(self, now: float) -> None:
        """Enforce deadlines; call at `next_deadline()`."""
        if self.state in HANDSHAKE_STATES and now >= self._handshake_deadline:
            self._close(
                R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT,
                f"handshake not completed within {self.config.handshake_timeout:g}s",
                by_peer=False,
                retry=True,
            )
        elif self.state in ACCEPTED_STATES and now >= self._liveness_deadline():
            self._close(
                R.DISCONNECT_REASON_HEARTBEAT_TIMEOUT,
                "no heartbeat from the collector",
                by_peer=False,
                retry=True,
            )

    def fail(self, reason: agent_pb2.DisconnectReason, message: str, retry_after: int = 0) -> None:
        """Close because of something the transport or peer did (bad frame, oversize, rate limit...).

        `retry_after` is the whole seconds the collector must wait before trying again.
        """
        self._close(reason, message, by_peer=False, retry=reason not in NO_RETRY_REASONS, retry_after=retry_after)

    def shutdown(
        self,
        message: str = "gateway shutting down; reconnect to another gateway",
        retry_after: int = 0,
    ) -> None:
        """Close because this gateway is stopping; the collector reconnects elsewhere."""
        self._close(
            R.DISCONNECT_REASON_SHUTTING_DOWN,
            message,
            by_peer=False,
            retry=True,
            retry_after=retry_after,
        )

    def connection_lost(self) -> None:
        """The transport saw the connection end without a Disconnect."""
        if self.state is not ServerState.CLOSED:
            self.state = ServerState.CLOSED
            self._events.append(SessionClosed(R.DISCONNECT_REASON_UNSPECIFIED, "connection lost", by_peer=True))

    # --- outputs --------------------------------------------------------------------
    def data_to_send(self) -> list[agent_pb2.ServerMessage]:
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
        return self.state is ServerState.CLOSED

    def next_deadline(self) -> float | None:
        """When to call `tick()` next; None once closed."""
        if self.state in HANDSHAKE_STATES:
            return self._handshake_deadline
        if self.state in ACCEPTED_STATES:
            return self._liveness_deadline()
        return None

    # --- message handlers -----------------------------------------------------------
    def _on_hello(self, hello: agent_pb2.Hello, now: float) -> None:
        _check_hello(hello)
        self.hello = agent_pb2.Hello()
        self.hello.CopyFrom(hello)  # the transport may reuse or mutate its envelope
        self.hello_received = True
        self.state = ServerState.AWAIT_PROOF
        if self.config.password_parameters:
            self._events.append(ChallengeRequested(self.hello))
        else:
            self.challenge()

    def _on_proof(self, proof: agent_pb2.Proof, now: float) -> None:
        assert self.hello is not None
        if not self._challenged:
            raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, "proof before the challenge")
        if len(proof.signature) != SIGNATURE_BYTES:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"proof signature must be {SIGNATURE_BYTES} bytes",
            )
        if len(proof.password_proofs) > len(self._offered) or any(
            len(p) != PASSWORD_PROOF_BYTES for p in proof.password_proofs
        ):
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"proof must carry at most one {PASSWORD_PROOF_BYTES}-byte password proof per offered parameter set "
                f"({len(self._offered)} offered)",
            )
        self.state = ServerState.AUTHENTICATING
        self._events.append(
            AuthenticationRequested(
                self.hello, self.nonce, proof.signature, self._offered, tuple(proof.password_proofs)
            )
        )

    def _on_heartbeat(self, heartbeat: agent_pb2.Heartbeat, now: float) -> None:
        if self.state in ACCEPTED_STATES:
            self._send(heartbeat_ack=agent_pb2.HeartbeatAck())
            self._events.append(HeartbeatReceived(heartbeat))

    def _on_job_update(self, update: agent_pb2.JobUpdate, now: float) -> None:
        # Status is accepted from a disabled collector too: disabling cancels its runs, and
        # the scheduler must hear how they ended. A pending collector never had a run.
        if self.state in (ServerState.ENABLED, ServerState.DISABLED):
            self._events.append(JobUpdateReceived(update))
        else:
            self._events.append(WorkRefused("job_update", update.job_run_id, self.state))

    def _on_result_batch(self, batch: agent_pb2.ResultBatch, now: float) -> None:
        if self.state is ServerState.ENABLED:
            self._events.append(ResultBatchReceived(batch))
        else:
            self._events.append(WorkRefused("result_batch", batch.job_run_id, self.state))

    def _on_key_rotation(self, rotation: agent_pb2.KeyRotation, now: float) -> None:
        self._events.append(KeyRotationReceived(rotation))

    def _on_disconnect(self, disconnect: agent_pb2.Disconnect, now: float) -> None:
        self.state = ServerState.CLOSED
        self._events.append(SessionClosed(disconnect.reason, disconnect.message, by_peer=True))

    # --- internals ------------------------------------------------------------------
    def _enter(self, state: ServerState, reason: str, changed_by: str, *, first: bool) -> None:
        previous = self.state
        self.state = state
        self._events.append(StateEntered(state, reason))
        if state is ServerState.PENDING:
            self._send(
                pending=agent_pb2.Pending(
                    fingerprint=self.fingerprint,
                    message=reason or "waiting for an admin to register this collector",
                    heartbeat_interval_seconds=int(self._heartbeat_interval),
                    session_id=self.session_id,
                )
            )
        elif first or previous is ServerState.PENDING:
            self._send(
                welcome=agent_pb2.Welcome(
                    state=PROTO_BY_STATE[state],
                    server_instance=self.config.server_instance,
                    heartbeat_interval_seconds=int(self._heartbeat_interval),
                    session_id=self.session_id,
                    fingerprint=self.fingerprint,
                    reason=reason,
                )
            )
        else:
            self._send(
                state_change=agent_pb2.StateChange(state=PROTO_BY_STATE[state], reason=reason, changed_by=changed_by)
            )

    def _remember(self, change: _Change) -> None:
        held = self._change_during_handshake
        if held is None or change.revision > held.revision:
            self._change_during_handshake = change

    def _close_removed(self, reason: str) -> None:
        self._close(
            R.DISCONNECT_REASON_REMOVED,
            reason or "collector was removed by an admin",
            by_peer=False,
            retry=False,
        )

    def _close(
        self,
        reason: agent_pb2.DisconnectReason,
        message: str,
        *,
        by_peer: bool,
        retry: bool,
        retry_after: int = 0,
    ) -> None:
        if self.state is ServerState.CLOSED:
            return
        self._send(
            disconnect=agent_pb2.Disconnect(
                reason=reason, message=message, retry=retry, retry_after_seconds=retry_after
            )
        )
        self.state = ServerState.CLOSED
        self._events.append(SessionClosed(reason, message, by_peer=by_peer))

    def _send(self, **body: object) -> None:
        self._send_sequence += 1
        self._outgoing.append(agent_pb2.ServerMessage(sequence=self._send_sequence, **body))  # type: ignore[arg-type]

    def _check_sequence(self, sequence: int) -> None:
        """Report a jump in the collector's numbering; 0 (unset) is not checked."""
        if not sequence:
            return
        expected = self._receive_sequence + 1
        if sequence != expected:
            self._events.append(SequenceGap(expected, sequence))
        self._receive_sequence = sequence

    def _liveness_deadline(self) -> float:
        return self.last_received + self._heartbeat_interval * self.config.missed_heartbeats


def _check_hello(hello: agent_pb2.Hello) -> None:
    """Raise RemoteProtocolError for a hello this server cannot take."""
    if hello.protocol_version != PROTOCOL_VERSION:
        raise RemoteProtocolError(
            R.DISCONNECT_REASON_UNSUPPORTED_VERSION,
            f"protocol version {hello.protocol_version} is not supported; this server speaks {PROTOCOL_VERSION}",
        )
    for name in (*REQUIRED_HELLO_FIELDS, *OPTIONAL_HELLO_FIELDS):
        value = getattr(hello, name)
        if not value and name in REQUIRED_HELLO_FIELDS:
            raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, f"hello without {name}")
        limit = MAX_VERIFIER_CHARS if name == "password_verifier" else MAX_FIELD_CHARS
        if len(value) > limit:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"hello {name} longer than {limit} characters",
            )
    if len(hello.capabilities) > MAX_CAPABILITIES or any(
        len(capability) > MAX_FIELD_CHARS for capability in hello.capabilities
    ):
        raise RemoteProtocolError(
            R.DISCONNECT_REASON_PROTOCOL_ERROR,
            f"hello capabilities: at most {MAX_CAPABILITIES} of at most {MAX_FIELD_CHARS} characters each",
        )
    problem = sealing.advertised_problem(hello.sealing_algorithms)
    if problem is not None:
        raise RemoteProtocolError(R.DISCONNECT_REASON_PROTOCOL_ERROR, f"hello {problem}")
    if len(hello.public_key) != handshake.PUBLIC_KEY_BYTES:
        raise RemoteProtocolError(
            R.DISCONNECT_REASON_PROTOCOL_ERROR,
            f"hello public_key must be a {handshake.PUBLIC_KEY_BYTES}-byte Ed25519 key",
        )


def _wire_interval(seconds: float) -> float:
    """The heartbeat interval as the collector will see it: whole seconds, at least 1.

    The wire carries whole seconds; the session must time the collector out on the same
    interval it told the collector, or a sub-second setting (sent as 0, which the
    collector reads as "use your default") makes the server drop healthy collectors.
    """
    return float(max(1, math.ceil(seconds)))
