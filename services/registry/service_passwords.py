"""Service-password operations: the Challenge's parameters and `collectors set-password` (ADR 0025).

`parameters` answers a gateway after a Hello: the salt, costs and bound key of each
credential a registered collector may prove now (current first), only when the hello
presents the key on record — anyone else learns nothing (not even whether the uid is
known). `set_password` computes the new credential with a fresh salt for the key and
username on record (argon2 outside any transaction, then a compare-and-set on the key),
keeps the old one as previous until the overlap ends, and touches no session: a
password is checked only at handshakes, so live sessions go on. The admin's call is
audited by the auth interceptor (principal and target; never the password).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from outpost import errors
from outpost.password_proof import PasswordParameters
from services.registry import metrics
from services.registry.domain import collectors as rules
from services.registry.domain import passwords
from services.registry.domain.collectors import Collector, CollectorState
from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)


async def parameters(
    store: RegistryStore, instance_uid: str, public_key: bytes, now: datetime
) -> list[PasswordParameters]:
    """What a Challenge offers this collector: empty unless registered and presenting its key."""
    async with store.read() as tx:
        known = await tx.collector_by_uid(instance_uid)
        if known is None or known.state is CollectorState.PENDING or known.public_key != public_key:
            return []
        credentials = await tx.passwords(instance_uid)
    return [c.parameters for c in passwords.accepted(credentials, now)]


async def set_password(
    store: RegistryStore, name: str, password: str, overlap: timedelta, *, actor: str, now: datetime
) -> tuple[Collector, int]:
    """Replace a registered collector's service password; the old one is accepted for `overlap`.

    Also returns the revision of the event that tells gateway caches (ADR 0034)."""
    name = rules.require_name(name)
    problem = passwords.password_problem(password) or passwords.overlap_problem(overlap)
    if problem is not None:
        raise errors.InvalidArgument(problem)
    async with store.read() as tx:
        collector = await tx.collector_by_name(name)
    if collector is None:
        raise rules.not_found(name)
    if collector.state is CollectorState.PENDING:
        raise errors.FailedPrecondition(
            f"collector '{name}' is pending: its password is checked when an admin registers it; "
            "set-password is for registered collectors"
        )
    new = await asyncio.to_thread(
        passwords.compute, password, username=collector.username, public_key=collector.public_key, now=now
    )
    # Exclusive: it appends the CREDENTIALS_CHANGED event gateway caches follow (ADR 0034).
    async with store.write(exclusive=True) as tx:
        current = await tx.collector_by_uid(collector.instance_uid)
        if current is None or (current.public_key, current.username) != (collector.public_key, collector.username):
            raise errors.FailedPrecondition(
                f"collector '{name}' changed its key while its password was being set; try again"
            )
        on_record = await tx.passwords(collector.instance_uid)
        kept = passwords.rotated(passwords.accepted(on_record, now), new, overlap=overlap, now=now)
        await tx.replace_passwords(collector.instance_uid, kept, rotated_at=now)
        revision = await tx.credentials_changed(current, "service password set", actor, now)
        updated = await tx.collector_by_uid(collector.instance_uid)
    assert updated is not None
    previous_until = next((c.accepted_until for c in kept if c.slot is passwords.Slot.PREVIOUS), None)
    metrics.PASSWORD_ROTATIONS.inc()
    log.info(
        "collector_password_set",
        collector=name,
        actor=actor,
        previous_accepted_until=previous_until.isoformat() if previous_until else None,
    )
    return replace(updated, password_on_record=True, previous_password_until=previous_until), revision


async def with_password_state(store: RegistryStore, collector: Collector, now: datetime) -> Collector:
    """`collector` with what `collectors show` says about its service password."""
    async with store.read() as tx:
        credentials = passwords.accepted(await tx.passwords(collector.instance_uid), now)
    previous_until = next((c.accepted_until for c in credentials if c.slot is passwords.Slot.PREVIOUS), None)
    return replace(collector, password_on_record=bool(credentials), previous_password_until=previous_until)
