"""Enrolling a collector with a zone enrollment token, inside the registry's handshake transaction.

`enroll` runs in the exclusive transaction `Registry.authenticate` opens for a hello that
carries a token from a collector not registered yet (unknown, or pending). Everything it
writes commits together or not at all: the token's use (a conditional UPDATE, so two
collectors racing for the last use cannot both win), the collector registered and
enabled in the token's zone with `state_changed_by` and `enrolled_by` naming the token,
its state-change event (which gateways watch), and an audit row whose principal is the
token and whose target is the collector ("which token enrolled which collector").

A refusal writes nothing here: no pending entry, no use taken. The caller records it as
evidence for `collectors explain`, within the budget for unknown collectors (ADR 0011),
and the gateway counts it against the address's failed-handshake limits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from outpost.auth import audit
from outpost.session import handshake
from services.registry.domain import authentication as auth
from services.registry.domain import enrollment_tokens as rules
from services.registry.domain.collectors import Collector, CollectorState, StateChange
from services.registry.domain.enrollment_tokens import EnrollmentDenied, EnrollmentTokenRecord
from services.registry.store import enrollment_tokens as queries
from services.registry.store.queries import Transaction

AUDIT_SERVICE = "registry"
AUDIT_METHOD = "EnrollCollector"
AUDIT_ROLE = "enrollment-token"


@dataclass(frozen=True)
class Enrolled:
    collector: Collector
    token: EnrollmentTokenRecord
    """As it stands after this use."""


@dataclass(frozen=True)
class Denied:
    """Refused: `denial` is None for a refusal that is not the token's (a name conflict)."""

    refused: auth.Refused
    denial: rules.Denial | None = None


def refused(denied: EnrollmentDenied) -> Denied:
    return Denied(
        auth.Refused(auth.Refusal.ENROLLMENT_REFUSED, denied.message, rules.RETRY_AFTER_SECONDS),
        denied.denial,
    )


async def enroll(
    tx: Transaction, attempt: auth.AuthAttempt, known: Collector | None, now: datetime
) -> Enrolled | Denied:
    """Register and enable the hello's collector in its token's zone, or say why not.

    `known` is the collector's pending row, or None for a newcomer; a registered collector
    never gets here (its token is ignored).
    """
    hello = attempt.hello
    presented = rules.parse_presented(hello.enrollment_token)
    stored = None if presented is None else await queries.by_token_id(tx.session, presented.token_id)
    denied = rules.check_enrollment(
        stored, presented, remote_address=attempt.remote_address, hello_zone=hello.zone, now=now
    )
    if denied is not None:
        return refused(denied)
    assert stored is not None
    token = stored.record
    if known is None:
        holder = await tx.collector_by_name(hello.name)
        conflict = auth.check_name_free(attempt, holder)
        if conflict is not None and holder is not None:
            await tx.record_name_conflict(attempt, handshake.fingerprint(hello.public_key), holder, now)
            return Denied(conflict)
    if not await queries.consume(tx.session, token.token_id, now):
        return refused(rules.used_up_now(token))
    token = replace(token, uses_used=token.uses_used + 1)
    collector = await _write_collector(tx, attempt, known, token, now)
    change = StateChange(CollectorState.ENABLED, _reason(token), token.principal)
    enrolled = await tx.change_state(collector, change, now, registering=True)
    # The password its hello's verifier was made from is its service password from now on
    # (trust on first use, like the key: the token vouched for the collector; ADR 0025).
    await tx.adopt_verifier(enrolled, now)
    await tx.clear_name_conflicts(hello.instance_uid)
    await queries.record_audit(tx.session, _audit_event(attempt, enrolled, token, now))
    return Enrolled(enrolled, token)


async def _write_collector(
    tx: Transaction, attempt: auth.AuthAttempt, known: Collector | None, token: EnrollmentTokenRecord, now: datetime
) -> Collector:
    """The collector's row in the token's zone, named by the token (its state is set next)."""
    hello = attempt.hello
    if known is not None:
        await tx.record_connection(attempt, now)  # while pending: the hello's credentials are the ones kept
        await queries.mark_enrolled(tx.session, known.instance_uid, zone=token.zone, enrolled_by=token.principal)
        return replace(
            known,
            zone=token.zone,
            enrolled_by=token.principal,
            username=hello.username,
            password_verifier=hello.password_verifier,
        )
    collector = Collector(
        instance_uid=hello.instance_uid,
        name=hello.name,
        zone=token.zone,
        version=hello.version,
        # The install-time credentials, exactly as a pending collector's: the key-bound
        # argon2id verifier of its hello (ADR 0013), kept for an admin's later checks.
        username=hello.username,
        password_verifier=hello.password_verifier,
        public_key=hello.public_key,
        encryption_public_key=hello.encryption_public_key,
        sealing_algorithms=hello.sealing_algorithms,
        fingerprint=handshake.fingerprint(hello.public_key),
        state=CollectorState.ENABLED,
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
        enrolled_by=token.principal,
    )
    await tx.insert_collector(collector)
    return collector


def _reason(token: EnrollmentTokenRecord) -> str:
    return f"enrolled by enrollment token '{token.name}' into zone '{token.zone}' ({_uses(token)})"


def _uses(token: EnrollmentTokenRecord) -> str:
    if token.uses_allowed:
        return f"use {token.uses_used} of {token.uses_allowed}"
    return f"use {token.uses_used}, unlimited"


def _audit_event(
    attempt: auth.AuthAttempt, collector: Collector, token: EnrollmentTokenRecord, now: datetime
) -> audit.AuditEvent:
    return audit.AuditEvent(
        at=now,
        service=AUDIT_SERVICE,
        method=AUDIT_METHOD,
        principal=token.principal,
        role=AUDIT_ROLE,
        peer=attempt.remote_address,
        target=collector.name,
        outcome="ok",
        detail=(
            f"token {token.token_id} enrolled collector '{collector.name}' ({collector.fingerprint}) into zone "
            f"'{collector.zone}', enabled ({_uses(token)}); via gateway {attempt.gateway_id} over {attempt.transport}"
            + (f" with access key {attempt.access_key_id}" if attempt.access_key_id else "")
        ),
    )
