"""Keep the collector connected: fail over between gateways, back off, never give up.

Theory of operation
-------------------
The supervisor tries the `--server` URLs in turn, moving to the next one after every
connection that ends, so a gateway that is down or draining hands its collectors to the
others. Each connection gets a fresh `CollectorSession` whose Hello carries the binding
recorded so far. Between attempts it waits, by `plan_reconnect`:

- a refusal only an operator can fix (unsupported version, wrong credentials, bound to
  another server instance, name conflict, removed, or any `retry=false` from the server):
  the maximum backoff, with an error line saying what to fix. A daemon does not exit on
  it: the admin may fix the server side, and the next attempt then succeeds;
- otherwise full-jitter exponential backoff (`outpost.backoff`), and never sooner than the
  server's `retry_after_seconds`. A session that was accepted resets the backoff, so a
  drained gateway's collectors reconnect elsewhere within a fraction of a second.

Sealed sessions (ADR 0019): with `sealed` set, every connection first runs the Noise
handshake over the opened transport (`transport.sealed`), within the same handshake time
budget. A typed refusal from the gateway (an unknown, revoked or zone-bound access key,
first contact refused, draining, rate limited) is advice and goes through
`plan_reconnect` as a server's Disconnect would; a handshake that does not check out (for
a pinned collector: a gateway that cannot prove the pinned key) is logged and retried
with the ordinary backoff, never by falling back to first contact.

Stopping is cancellation (see `connection.Connection`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

import structlog

from outpost import sealing
from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.session import handshake
from outpost.session.collector import Closed, CollectorSession, CollectorState
from outpost.session.noise import SealedSessionError
from outpost.session.noise.wire import HandshakeRefused
from outpost.version import PROTOCOL_VERSION, VERSION
from services.collector.connection import Connection, ConnectionOutcome, Work, reason_name
from services.collector.domain.server_url import ServerUrl
from services.collector.key_rotation import KeyRotator
from services.collector.service_password import ServicePassword
from services.collector.status import StatusFile
from services.collector.store.enrollment import RegistrationRecord
from services.collector.store.identity import Identity, IdentityStore
from services.collector.store.server_pin import ServerPinError
from services.collector.transport import Transport, TransportError
from services.collector.transport.sealed import SealedSessions, SealedTransport

log = structlog.get_logger(__name__)

R = agent_pb2.DisconnectReason

CAPABILITIES = ("state_change.v1",)
MAX_RETRY_AFTER = 3600.0

ADVICE: dict[int, str] = {
    R.DISCONNECT_REASON_UNSUPPORTED_VERSION: "upgrade the collector to a version the server supports",
    R.DISCONNECT_REASON_AUTHENTICATION_FAILED: (
        "check --name, --zone, --username and the password file against what the admin registered "
        "(the message says which differs)"
    ),
    R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE: (
        "this collector belongs to another server instance; reinstall it with an empty --data-dir to move it"
    ),
    R.DISCONNECT_REASON_NAME_CONFLICT: "another collector has this --name; choose another one",
    R.DISCONNECT_REASON_REMOVED: "an admin removed this collector; ask them to register it again",
    R.DISCONNECT_REASON_ACCESS_KEY_REFUSED: (
        "the gateway does not accept this access key (unknown, revoked, expired or bound to another zone), "
        "or it admits only collectors that have its key pinned: ask the admin for an access key "
        "(outpostctl access-keys create, with the server key) and give it with --access-key-file"
    ),
    R.DISCONNECT_REASON_ENROLLMENT_REFUSED: (
        "the enrollment token did not admit this collector (the message says why: unknown, revoked, expired, "
        "used up, another network or zone); ask an admin for a valid token (`outpostctl enrollment-tokens "
        "list`), put it in --enrollment-token-file and restart, or ask them to register this collector"
    ),
}

OpenTransport = Callable[[ServerUrl], Awaitable[Transport]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class CollectorProfile:
    """What the collector says about itself in every Hello, besides its identity."""

    name: str
    zone: str
    username: str
    password_verifier: str
    sealing_algorithms: tuple[str, ...] = sealing.OPENS
    """What `outpost.sealing.open_sealed` opens, listed in the hello: the registry seals with HPKE
    only then (ADR 0020). Empty under --legacy-sealing, as collectors before HPKE."""
    enrollment_token: str = field(default="", repr=False)
    """A zone enrollment token's text (ADR 0022); sent only while `enrolling`."""

    def hello(
        self, identity: Identity, spool: agent_pb2.SpoolStatus | None = None, *, enrolling: bool = False
    ) -> agent_pb2.Hello:
        """The Hello for `identity`, with the spool as it stands when the session starts.

        `enrolling`: the server has not registered this collector yet, so its enrollment
        token (if it has one) goes along (only ever inside the sealed session).
        """
        return agent_pb2.Hello(
            protocol_version=PROTOCOL_VERSION,
            capabilities=list(CAPABILITIES),
            instance_uid=identity.instance_uid,
            name=self.name,
            zone=self.zone,
            version=VERSION,
            bound_server_instance=identity.bound_server_instance,
            public_key=identity.public_key,
            username=self.username,
            password_verifier=self.password_verifier,
            encryption_public_key=identity.encryption_public_key,
            spool=spool,
            sealing_algorithms=list(self.sealing_algorithms),
            enrollment_token=self.enrollment_token if enrolling else "",
        )


@dataclass(frozen=True)
class ReconnectPlan:
    delay: float
    needs_operator: bool = False


def _refused(server: ServerUrl, refused: HandshakeRefused) -> ConnectionOutcome:
    """A typed handshake refusal as the outcome of a connection the server closed."""
    disconnect = refused.disconnect
    closed = Closed(
        disconnect.reason,
        disconnect.message,
        disconnect.retry,
        float(disconnect.retry_after_seconds),
        by_server=True,
    )
    return ConnectionOutcome(server, accepted=False, closed=closed)


def plan_reconnect(outcome: ConnectionOutcome | None, backoff: Backoff) -> ReconnectPlan:
    """How long to wait after `outcome` (None: the connection could not be opened)."""
    if outcome is None:
        return ReconnectPlan(backoff.next_delay())
    if outcome.accepted:
        backoff.reset()
    closed = outcome.closed
    if closed.reason in ADVICE or (closed.by_server and not closed.retry):
        # Slowly, and never sooner than the server asked (a refused enrollment token: minutes).
        wait = min(closed.retry_after, MAX_RETRY_AFTER) if closed.by_server else 0.0
        return ReconnectPlan(max(backoff.maximum, wait), needs_operator=True)
    delay = backoff.next_delay()
    if closed.by_server and closed.retry_after > 0:
        delay = max(delay, min(closed.retry_after, MAX_RETRY_AFTER))
    return ReconnectPlan(delay)


class Supervisor:
    def __init__(
        self,
        *,
        servers: Sequence[ServerUrl],
        profile: CollectorProfile,
        identity: Identity,
        identity_store: IdentityStore,
        status: StatusFile,
        open_transport: OpenTransport,
        backoff: Backoff,
        handshake_timeout: float,
        sleep: Sleep = asyncio.sleep,
        work: Work | None = None,
        wall_clock: Callable[[], float] = time.time,
        sealed: SealedSessions | None = None,
        registration: RegistrationRecord | None = None,
        rotate_key_after: float = 0.0,
        password: ServicePassword | None = None,
    ) -> None:
        if not servers:
            raise ValueError("at least one server URL is needed")
        self.servers = list(servers)
        self.profile = profile
        self.identity = identity
        self.identity_store = identity_store
        self.status = status
        self.open_transport = open_transport
        self.backoff = backoff
        self.handshake_timeout = handshake_timeout
        self.sleep = sleep
        self.work = work
        self.wall_clock = wall_clock
        self.sealed = sealed
        self.registration = registration
        self.password = password
        """The service password, re-read before every connection (ADR 0025); None: the profile's
        verifier is sent and no password is proven (tests, tools)."""
        self.rotator = KeyRotator(identity, identity_store, rotate_after=rotate_key_after, wall_clock=wall_clock)

    async def run(self) -> NoReturn:
        """Connect, and reconnect after every end, until cancelled."""
        attempt = 0
        while True:
            server = self.servers[attempt % len(self.servers)]
            attempt += 1
            with structlog.contextvars.bound_contextvars(server=str(server)):
                outcome = await self.connect_once(server)
                plan = plan_reconnect(outcome, self.backoff)
                self._log_plan(outcome, plan)
            await self.sleep(plan.delay)

    async def connect_once(self, server: ServerUrl) -> ConnectionOutcome | None:
        """One connection attempt to its end; None when no session could be opened."""
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                # Connecting (and sealing) shares the handshake's time budget: a black-holed
                # address must not stall failover for the OS's TCP timeout.
                async with asyncio.timeout(self.handshake_timeout):
                    transport = await self.open_transport(server)
            except (TransportError, TimeoutError) as exc:
                error = str(exc) or f"no connection within {self.handshake_timeout:g}s"
                log.warning("connection_failed", error=error)
                return None
            log.debug("connection_opened")
            channel_binding = b""
            if self.sealed is not None:
                sealed = await self._seal(server, transport, self.handshake_timeout - (loop.time() - started))
                if not isinstance(sealed, SealedTransport):
                    return sealed
                transport, channel_binding = sealed, sealed.handshake_hash
            work = self.work
            presented = self.rotator.presented()
            profile = self.profile
            if self.password is not None:
                # The operator may have edited the password file since the last connection.
                self.password.refresh()
                profile = replace(profile, password_verifier=self.password.verifier(presented.public_key))
            session = CollectorSession(
                # carries the binding recorded so far, and the spool as it stands
                hello=profile.hello(
                    presented, work.spool_status() if work is not None else None, enrolling=self._enrolling()
                ),
                sign=presented.private_key.sign,
                now=loop.time(),
                handshake_timeout=self.handshake_timeout,
                channel_binding=channel_binding,
                password_proofs=self.password.proofs if self.password is not None else None,
            )
            connection = Connection(
                transport,
                session,
                server=server,
                identity=presented,
                identity_store=self.identity_store,
                status=self.status,
                work=self.work,
                wall_clock=self.wall_clock,
                on_registered=self._registered,
                rotator=self.rotator,
            )
            return await connection.run()
        except Exception:
            # The boundary of one attempt: a bug here must not end the daemon.
            log.exception("connection_crashed")
            return None

    def _enrolling(self) -> bool:
        """Send the enrollment token? Only while the server has not registered this collector."""
        return bool(self.profile.enrollment_token) and (self.registration is None or not self.registration.registered)

    def _registered(self, state: CollectorState) -> None:
        """The server says enabled or disabled: remember it, so the token is never sent again."""
        if self.registration is None or not self.profile.enrollment_token:
            return
        try:
            if self.registration.mark_registered(state.value):
                log.info("enrollment_complete", state=state.value, path=str(self.registration.path))
        except OSError as exc:
            log.error("registration_record_failed", path=str(self.registration.path), error=str(exc))

    async def _seal(
        self, server: ServerUrl, transport: Transport, budget: float
    ) -> SealedTransport | ConnectionOutcome | None:
        """The Noise handshake over `transport`; on failure close it and say how the attempt ended."""
        assert self.sealed is not None
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                return await SealedTransport.establish(transport, self.sealed, server.family)
        except HandshakeRefused as exc:
            outcome: ConnectionOutcome | None = _refused(server, exc)
            pinned = self.sealed.last_attempted
            if pinned is not None and exc.disconnect.reason == R.DISCONNECT_REASON_AUTHENTICATION_FAILED:
                # Message 1 was sealed to the pinned key; a gateway that could not read it
                # does not hold that key.
                self._pinned_key_not_proven(pinned, "refused_message_1", exc.disconnect.message)
                outcome = None
            else:
                if exc.disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED:
                    self.sealed.access_key_refused()
                log.warning(
                    "handshake_refused",
                    reason=reason_name(exc.disconnect.reason),
                    message=exc.disconnect.message,
                    note="unauthenticated advice from whoever answered; it changes nothing but when we retry",
                )
        except SealedSessionError as exc:
            outcome = None
            pinned = self.sealed.last_attempted
            if pinned is not None:
                self._pinned_key_not_proven(pinned, exc.cause.value, exc.message)
            else:
                log.error("sealed_handshake_failed", cause=exc.cause.value, detail=exc.message)
        except ServerPinError as exc:
            outcome = None
            log.error("server_pin_unusable", error=str(exc))
        except (TransportError, TimeoutError) as exc:
            outcome = None
            log.warning("connection_failed", error=str(exc) or "no sealed session within the handshake timeout")
        try:
            await transport.close()
        except Exception:  # the attempt is over either way
            log.debug("transport_close_failed", exc_info=True)
        return outcome

    def _pinned_key_not_proven(self, pinned: bytes, cause: str, detail: str) -> None:
        assert self.sealed is not None
        self.sealed.handshake_failed()  # the next attempt tries another pinned key, if any (ADR 0024)
        log.error(
            "server_key_mismatch",
            message=f"the server could not prove the pinned key {handshake.fingerprint(pinned)}, "
            "refusing (relaying or impersonating gateway?)",
            cause=cause,
            detail=detail,
            advice="if the server's key was changed on purpose, delete server.pin in the data directory "
            "(or use an access key that carries the new key) and restart",
        )

    def _log_plan(self, outcome: ConnectionOutcome | None, plan: ReconnectPlan) -> None:
        if plan.needs_operator and outcome is not None:
            closed = outcome.closed
            log.error(
                "reconnect_needs_operator",
                reason=reason_name(closed.reason),
                message=closed.message,
                advice=ADVICE.get(closed.reason, "the server refused this collector; see message"),
                retry_in=round(plan.delay, 3),
            )
        else:
            log.info("reconnect_scheduled", retry_in=round(plan.delay, 3))
