"""The registry's operations: each reads rows, applies a domain rule, writes, and tells.

`Registry` is what the gRPC servicer calls. One method per operation; each runs its
transaction (`store`), decides with pure functions (`domain`), wakes this replica's
watchers after a commit that appended an event (`watch`), and logs the decision. It
never sees protobuf, and passwords pass through it only on their way to argon2.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import structlog

from outpost import errors
from outpost.password_proof import PasswordParameters
from outpost.session import handshake
from services.registry import enrollment, key_rotation, metrics, service_passwords
from services.registry.domain import authentication as auth
from services.registry.domain import collectors as rules
from services.registry.domain import explain, passwords
from services.registry.domain.collectors import (
    Collector,
    CollectorEvent,
    CollectorState,
    NameConflict,
    SessionReport,
)
from services.registry.domain.pending_limits import PendingLimits
from services.registry.domain.refusals import HandshakeRefusal
from services.registry.domain.verifier import credentials_match
from services.registry.pending_gate import PendingGate
from services.registry.store.queries import RegistryStore, Transaction
from services.registry.watch import WatchHub

log = structlog.get_logger(__name__)

MAX_ERROR_CHARS = 2000
"""A gateway's `last_error` for a session is kept this long at most: enough to act on."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _wants_enrollment(attempt: auth.AuthAttempt, known: Collector) -> bool:
    """A hello with a token from a collector still pending is enrolled; a registered one ignores it."""
    if not attempt.hello.enrollment_token:
        return False
    if known.state is not CollectorState.PENDING:
        log.debug("enrollment_token_ignored", collector=known.name, state=str(known.state))
        return False
    return True


@dataclass(frozen=True)
class ServerInfo:
    server_instance: str
    version: str
    started_at: datetime
    database: str
    heartbeat_interval_seconds: int


class Registry:
    """Collectors: handshakes, admin decisions, session status and the change feed."""

    def __init__(
        self,
        store: RegistryStore,
        hub: WatchHub,
        info: ServerInfo,
        clock: Callable[[], datetime] = utc_now,
        pending: PendingGate | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self.info = info
        self._now = clock
        self._pending = pending or PendingGate(PendingLimits())
        self._nonces_purged_at: datetime | None = None

    # --- handshakes (gateways) -----------------------------------------------------------
    async def authenticate(self, attempt: auth.AuthAttempt) -> auth.AuthOutcome:
        """Decide one handshake; see `domain.authentication` for the order of checks."""
        problem = auth.attempt_problem(attempt)
        if problem is not None:
            raise errors.InvalidArgument(problem)
        now = self._now()
        refused = auth.check_handshake(attempt, self.info.server_instance) or auth.check_nonce_fresh(attempt, now)
        enrolling = bool(attempt.hello.enrollment_token)
        # A newcomer refused for the pending bound costs one read, no write (not even its nonce).
        # A hello with an enrollment token never becomes pending, so the bound is not its.
        early = None if refused or enrolling else await self._pending.refuse_early(self._store, attempt)
        outcome = None if early is None else self._outcome(attempt, None, early)
        if outcome is None:
            await self._purge_nonces(now)
            async with self._store.write(exclusive=False) as tx:
                if refused is None and not await tx.use_nonce(attempt.nonce, auth.nonce_kept_until(attempt, now)):
                    refused = auth.replayed_nonce()
                known = await tx.collector_by_uid(attempt.hello.instance_uid)
                if known is not None and not (refused is None and _wants_enrollment(attempt, known)):
                    outcome = await self._authenticate_known(tx, attempt, known, refused, now)
        if outcome is None and refused is not None:
            outcome = self._outcome(attempt, None, refused)
        if outcome is None and enrolling:
            outcome = await self._enroll(attempt, now)
        if outcome is None:
            outcome = await self._authenticate_unknown(attempt, now)
        # A refused newcomer's evidence is kept within a budget: a flood of fresh keys is no flood of writes.
        newcomer = outcome.state is None
        if outcome.refused is not None and newcomer and not self._pending.keep_evidence(outcome.refused, now):
            metrics.AUTHENTICATIONS.labels(outcome.refused.refusal.value).inc()
            return outcome
        if outcome.refused is not None:
            await self._record_refusal(attempt, outcome, outcome.refused, now)
        self._record(attempt, outcome)
        return outcome

    async def rotate_key(self, request: key_rotation.KeyRotationRequest) -> key_rotation.KeyRotationDecision:
        """A collector's KeyRotation from its live sealed session (see `key_rotation`)."""
        decision = await key_rotation.rotate(self._store, request, self._now())
        if decision.revision:
            self._hub.notify(decision.revision)
        return decision

    async def password_parameters(self, instance_uid: str, public_key: bytes) -> list[PasswordParameters]:
        """The service-password parameters a gateway's Challenge offers (see `service_passwords`)."""
        return await service_passwords.parameters(self._store, instance_uid, public_key, self._now())

    async def set_password(self, name: str, password: str, overlap: timedelta, *, actor: str) -> Collector:
        """`collectors set-password` (see `service_passwords`)."""
        collector, revision = await service_passwords.set_password(
            self._store, name, password, overlap, actor=actor, now=self._now()
        )
        self._hub.notify(revision)
        return self._as_seen(collector, self._now())

    async def _purge_nonces(self, now: datetime) -> None:
        """Delete expired nonces, at most once per `NONCE_MAX_AGE` on this replica."""
        if self._nonces_purged_at is not None and now - self._nonces_purged_at < auth.NONCE_MAX_AGE:
            return
        self._nonces_purged_at = now
        purged = await self._store.purge_nonces(now)
        log.debug("handshake_nonces_purged", purged=purged)

    async def _record_refusal(
        self, attempt: auth.AuthAttempt, outcome: auth.AuthOutcome, refused: auth.Refused, now: datetime
    ) -> None:
        """Keep the refusal as evidence for `explain` (its own short transaction, bounded table)."""
        refusal = HandshakeRefusal(
            name=outcome.name,
            instance_uid=attempt.hello.instance_uid,
            fingerprint=outcome.fingerprint,
            remote_address=attempt.remote_address,
            reason=refused.refusal.value,
            message=refused.message[:MAX_ERROR_CHARS],
            first_at=now,
            last_at=now,
        )
        async with self._store.write(exclusive=False) as tx:
            await tx.record_refusal(refusal, now)

    async def _authenticate_known(
        self,
        tx: Transaction,
        attempt: auth.AuthAttempt,
        known: Collector,
        refused: auth.Refused | None,
        now: datetime,
    ) -> auth.AuthOutcome:
        refused = refused or auth.check_known_key(attempt, known) or auth.check_known_identity(attempt, known)
        slot = None
        if refused is None:
            credentials = await tx.passwords(known.instance_uid)
            refused, slot = auth.check_password(attempt, known, credentials, now)
            if not credentials and known.state is not CollectorState.PENDING:
                log.info("collector_without_password_credential", collector=known.name)
        if refused is not None:
            await tx.record_error(known.instance_uid, refused.message, now)
            return self._outcome(attempt, known, refused)
        await tx.record_connection(attempt, now)
        if slot is not None:
            await tx.password_proved(known.instance_uid, slot, now)
        return self._outcome(attempt, known, None)

    async def _authenticate_unknown(self, attempt: auth.AuthAttempt, now: datetime) -> auth.AuthOutcome:
        """First contact: store as pending, or record a name conflict.

        Exclusive: it may append an event, and two first contacts must not both win a name.
        """
        hello = attempt.hello
        fingerprint = handshake.fingerprint(hello.public_key)
        async with self._store.write(exclusive=True) as tx:
            known = await tx.collector_by_uid(hello.instance_uid)
            if known is not None:  # it won a race against itself on another gateway
                return await self._authenticate_known(tx, attempt, known, None, now)
            holder = await tx.collector_by_name(hello.name)
            refused = auth.check_name_free(attempt, holder)
            if refused is not None and holder is not None:
                await tx.record_name_conflict(attempt, fingerprint, holder, now)
                return self._outcome(attempt, None, refused)
            refused = await self._pending.check(tx, attempt.remote_address)
            if refused is not None:
                return self._outcome(attempt, None, refused)
            pending = Collector(
                instance_uid=hello.instance_uid,
                name=hello.name,
                zone=hello.zone,
                version=hello.version,
                username=hello.username,
                password_verifier=hello.password_verifier,
                public_key=hello.public_key,
                encryption_public_key=hello.encryption_public_key,
                sealing_algorithms=hello.sealing_algorithms,
                fingerprint=fingerprint,
                state=CollectorState.PENDING,
                first_seen=now,
                last_seen=now,
                remote_address=attempt.remote_address,
                transport=attempt.transport,
                access_key_id=attempt.access_key_id,
                gateway_id=attempt.gateway_id,
                session_id=attempt.session_id,
                connected=True,
                reported_at=now,
                spool=hello.spool,
            )
            await tx.insert_collector(pending)
            change = rules.StateChange(CollectorState.PENDING, "announced; waiting for an admin to register it", "")
            created = await tx.change_state(pending, change, now, registering=False)
            await tx.clear_name_conflicts(hello.instance_uid)
        self._hub.notify(created.revision)
        return replace(self._outcome(attempt, created, None), created=True)

    async def _enroll(self, attempt: auth.AuthAttempt, now: datetime) -> auth.AuthOutcome:
        """A hello with an enrollment token from a collector not registered: enroll it, or refuse.

        Exclusive: it appends an event, and two collectors racing for a name or for a
        token's last use must not both win (`enrollment`). A collector registered meanwhile
        (on another gateway) is authenticated as usual, its token ignored.
        """
        async with self._store.write(exclusive=True) as tx:
            known = await tx.collector_by_uid(attempt.hello.instance_uid)
            if known is not None:
                refused = auth.check_known_key(attempt, known) or auth.check_known_identity(attempt, known)
                if refused is not None or not _wants_enrollment(attempt, known):
                    return await self._authenticate_known(tx, attempt, known, refused, now)
            result = await enrollment.enroll(tx, attempt, known, now)
        if isinstance(result, enrollment.Denied):
            if result.denial is not None:
                metrics.ENROLLMENTS.labels(result.denial.value).inc()
            return self._outcome(attempt, known, result.refused)  # a pending collector stays pending
        enrolled = result.collector
        self._hub.notify(enrolled.revision)
        if known is not None:
            self._pending.forget()
        metrics.ENROLLMENTS.labels("enrolled").inc()
        log.info(
            "collector_enrolled",
            collector=enrolled.name,
            zone=enrolled.zone,
            fingerprint=enrolled.fingerprint,
            enrollment_token=result.token.name,
            token_id=result.token.token_id,
            uses_used=result.token.uses_used,
            uses_allowed=result.token.uses_allowed,
            remote_address=attempt.remote_address,
            was_pending=known is not None,
            revision=enrolled.revision,
        )
        return self._outcome(attempt, enrolled, None)

    def _outcome(
        self, attempt: auth.AuthAttempt, collector: Collector | None, refused: auth.Refused | None
    ) -> auth.AuthOutcome:
        return auth.AuthOutcome(
            name=collector.name if collector else attempt.hello.name,
            zone=collector.zone if collector else "",
            instance_uid=attempt.hello.instance_uid,
            fingerprint=handshake.fingerprint(attempt.hello.public_key),
            refused=refused,
            state=collector.state if collector else None,
            revision=collector.revision if collector else 0,
            state_reason=collector.state_reason if collector else "",
            state_changed_by=collector.state_changed_by if collector else "",
        )

    def _record(self, attempt: auth.AuthAttempt, outcome: auth.AuthOutcome) -> None:
        fields = {
            "collector": outcome.name,
            "instance_uid": outcome.instance_uid,
            "fingerprint": outcome.fingerprint,
            "remote_address": attempt.remote_address,
            "gateway_id": attempt.gateway_id,
            "session_id": attempt.session_id,
            "transport": attempt.transport,
            "access_key_id": attempt.access_key_id,
        }
        if outcome.refused is not None:
            metrics.AUTHENTICATIONS.labels(outcome.refused.refusal.value).inc()
            log.warning(
                "collector_refused",
                refusal=outcome.refused.refusal.value,
                message=outcome.refused.message,
                **fields,
            )
            return
        metrics.AUTHENTICATIONS.labels("accepted").inc()
        if outcome.created:
            log.info("collector_announced", zone=outcome.zone, **fields)
        log.info("collector_authenticated", state=str(outcome.state), **fields)

    # --- admin decisions -----------------------------------------------------------------
    async def register(
        self, name: str, *, username: str, password: str, enable: bool, actor: str, fingerprint: str = ""
    ) -> Collector:
        """Check the install-time credentials, then move a pending collector out of pending.

        The password is checked for the key on record (ADR 0013), and when the admin named
        the key's `fingerprint`, against that too. argon2 runs outside any transaction (it
        is slow by design); the write then checks that nothing changed meanwhile, so the
        admin's check covers what gets registered.
        """
        name = rules.require_name(name)
        async with self._store.read() as tx:
            collector = await tx.collector_by_name(name)
        if collector is None:
            raise rules.not_found(name)
        rules.plan_registration(collector, enable=enable, actor=actor)
        rules.check_fingerprint(collector, fingerprint)
        matched = await asyncio.to_thread(
            credentials_match,
            stored_username=collector.username,
            verifier=collector.password_verifier,
            public_key=collector.public_key,
            username=username,
            password=password,
        )
        if not matched:
            metrics.REGISTRATIONS.labels("refused").inc()
            log.warning("collector_registration_refused", collector=name, actor=actor)
            raise errors.PermissionDenied(
                f"username or password does not match what collector '{name}' was installed with; it stays pending"
            )
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            current = await tx.collector_by_name(name)
            if current is None:
                raise rules.not_found(name)
            change = rules.plan_registration(current, enable=enable, actor=actor)
            rules.check_fingerprint(current, fingerprint)
            if (current.instance_uid, current.username, current.password_verifier, current.public_key) != (
                collector.instance_uid,
                collector.username,
                collector.password_verifier,
                collector.public_key,
            ):
                raise errors.FailedPrecondition(
                    f"collector '{name}' reconnected with new credentials while being registered; try again"
                )
            registered = await tx.change_state(current, change, now, registering=True)
            # The verifier the admin just checked becomes the handshake credential (ADR 0025).
            if not await tx.adopt_verifier(registered, now):
                log.warning("collector_without_password_credential", collector=name)
        self._hub.notify(registered.revision)
        self._pending.forget()
        metrics.REGISTRATIONS.labels("registered").inc()
        log.info(
            "collector_registered",
            collector=name,
            state=str(registered.state),
            actor=change.changed_by,
            revision=registered.revision,
        )
        return self._as_seen(registered, now)

    async def set_enabled(self, name: str, *, enabled: bool, actor: str, reason: str) -> Collector:
        """Enable or disable a registered collector; a no-op when it already is."""
        name = rules.require_name(name)
        target = CollectorState.ENABLED if enabled else CollectorState.DISABLED
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            collector = await tx.collector_by_name(name)
            if collector is None:
                raise rules.not_found(name)
            change = rules.plan_admin_change(collector, target, actor=actor, reason=reason)
            if change is not None:
                collector = await tx.change_state(collector, change, now, registering=False)
        if change is not None:
            self._hub.notify(collector.revision)
            log.info(
                "collector_enabled" if enabled else "collector_disabled",
                collector=name,
                actor=change.changed_by,
                reason=change.reason,
                revision=collector.revision,
            )
        return self._as_seen(collector, now)

    async def remove(self, name: str, *, actor: str, reason: str) -> None:
        name = rules.require_name(name)
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            collector = await tx.collector_by_name(name)
            if collector is None:
                raise rules.not_found(name)
            change = rules.plan_removal(collector, actor=actor, reason=reason)
            revision = await tx.remove(collector, change, now)
        self._hub.notify(revision)
        self._pending.forget()
        log.info(
            "collector_removed",
            collector=name,
            instance_uid=collector.instance_uid,
            actor=change.changed_by,
            reason=change.reason,
            revision=revision,
        )

    # --- session status (gateways) -------------------------------------------------------
    async def report_sessions(self, gateway_id: str, reports: Sequence[SessionReport], *, complete: bool) -> None:
        if not gateway_id.strip():
            raise errors.InvalidArgument("gateway_id is required")
        problem = auth.session_fields_problem(gateway_id=gateway_id)
        for report in reports:
            problem = problem or auth.session_fields_problem(
                instance_uid=report.instance_uid,
                session_id=report.session_id,
                remote_address=report.remote_address,
                transport=report.transport,
            )
        if problem is not None:
            raise errors.InvalidArgument(f"session report refused: {problem}")
        for report in reports:
            if not 0 <= report.check_in_seconds <= rules.MAX_CHECK_IN_SECONDS:
                raise errors.InvalidArgument(
                    f"session report refused: check_in_seconds {report.check_in_seconds} is beyond "
                    f"{rules.MAX_CHECK_IN_SECONDS} (collector_check_minutes 1440)"
                )
        reports = [replace(r, last_error=r.last_error[:MAX_ERROR_CHARS]) for r in reports]
        async with self._store.write(exclusive=False) as tx:
            await tx.report_sessions(gateway_id, reports, complete, self._now())
        log.debug("sessions_reported", gateway_id=gateway_id, sessions=len(reports), complete=complete)

    # --- reading -------------------------------------------------------------------------
    async def list_collectors(
        self, state: CollectorState | None, *, zone: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Collector], str]:
        """A page of collectors by name (outpost.paging), as people should read them; the next token."""
        async with self._store.read() as tx:
            found, next_token = await tx.collectors_page(state, zone, page_size, page_token)
        now = self._now()
        return [self._as_seen(c, now) for c in found], next_token

    async def get_collector(self, name: str) -> Collector:
        name = rules.require_name(name)
        async with self._store.read() as tx:
            collector = await tx.collector_by_name(name)
        if collector is None:
            raise rules.not_found(name)
        collector = await service_passwords.with_password_state(self._store, collector, self._now())
        return self._as_seen(collector, self._now())

    async def list_name_conflicts(self) -> list[NameConflict]:
        async with self._store.read() as tx:
            return await tx.name_conflicts()

    async def collector_credentials(
        self, *, after_uid: str, limit: int, instance_uids: Sequence[str] = ()
    ) -> tuple[int, list[tuple[Collector, list[passwords.PasswordCredential]]]]:
        """What gateways cache to verify registered collectors themselves (ADR 0034), a page at a time."""
        return await self._store.collector_credentials(after_uid=after_uid, limit=limit, instance_uids=instance_uids)

    def watch(self, since_revision: int) -> AsyncIterator[CollectorEvent]:
        return self._hub.watch(since_revision)

    async def explain(self, name: str) -> explain.Explanation:
        """Why `name` is or is not live; an unknown name is explained too, not an error."""
        name = rules.require_name(name)
        async with self._store.read() as tx:
            collector = await tx.collector_by_name(name)
            refusals = await tx.refusals_for(name, collector.instance_uid if collector else None)
        now = self._now()
        seen = None if collector is None else self._as_seen(collector, now)
        settings = explain.ServerSettings(
            server_instance=self.info.server_instance,
            version=self.info.version,
            heartbeat_interval_seconds=self.info.heartbeat_interval_seconds,
        )
        return explain.explain_collector(name, seen, refusals, settings, now)

    def _as_seen(self, collector: Collector, now: datetime) -> Collector:
        """The collector as people should read it: `online` computed at `now` (ADR 0010).

        Computed at every read, never stored: a gateway killed with -9 sends nothing more,
        and its collectors must still turn offline.
        """
        online = rules.is_online(collector, now, self.info.heartbeat_interval_seconds)
        return replace(collector, online=online)
