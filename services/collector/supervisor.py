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

Stopping is cancellation (see `connection.Connection`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import structlog

from outpost import sealing
from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.session.collector import CollectorSession, CollectorState
from outpost.version import PROTOCOL_VERSION, VERSION
from services.collector.connection import Connection, ConnectionOutcome, Work, reason_name
from services.collector.domain.server_url import ServerUrl
from services.collector.status import StatusFile
from services.collector.store.enrollment import RegistrationRecord
from services.collector.store.identity import Identity, IdentityStore
from services.collector.transport import Transport, TransportError

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
        token (if it has one) goes along.
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
        registration: RegistrationRecord | None = None,
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
        self.registration = registration

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
        """One connection attempt to its end; None when the transport could not be opened."""
        try:
            work = self.work
            session = CollectorSession(
                # carries the binding recorded so far, and the spool as it stands
                hello=self.profile.hello(
                    self.identity, work.spool_status() if work is not None else None, enrolling=self._enrolling()
                ),
                sign=self.identity.private_key.sign,
                now=asyncio.get_running_loop().time(),
                handshake_timeout=self.handshake_timeout,
                heartbeat_source=work.heartbeat if work is not None else None,
            )
            try:
                # Connecting shares the handshake's time budget: a black-holed address
                # must not stall failover for the OS's TCP timeout.
                async with asyncio.timeout(self.handshake_timeout):
                    transport = await self.open_transport(server)
            except (TransportError, TimeoutError) as exc:
                error = str(exc) or f"no connection within {self.handshake_timeout:g}s"
                log.warning("connection_failed", error=error)
                return None
            log.debug("connection_opened")
            connection = Connection(
                transport,
                session,
                server=server,
                identity=self.identity,
                identity_store=self.identity_store,
                status=self.status,
                work=self.work,
                wall_clock=self.wall_clock,
                on_registered=self._registered,
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
