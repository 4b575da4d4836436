"""A collector replaces its identity key inside its live sealed session (ADR 0024).

The gateway forwards the collector's `KeyRotation` with what only the gateway knows: the
session id and the Noise handshake hash of the session it terminated, and the key that
session authenticated with. The rotation is applied when

- the collector exists, is registered (a pending collector's install-time verifier is
  bound to its key and checked by the admin at `register`, so a pending key must not
  move under the admin's check: it rotates after registration),
- the session is the one the registry recorded for it (a stale or superseded session
  cannot rotate), and the old key is the key on record,
- both signatures verify over the message bound to this session's handshake hash
  (`outpost.session.key_rotation`), and the new key is no other collector's.

Then, in one transaction: the key and fingerprint are replaced with a compare-and-set on
the old key (two concurrent rotations cannot both apply), `key_rotated_at` is set, and an
audit row names the collector (via its gateway) as the principal. Nothing else changes:
state, name, zone, runs, the HPKE sealing key and therefore sealed credentials. The
stored password verifier stays as it is: it was checked once, by the admin at
`register`, against the old key, and is never read again (ADR 0013); it is the
historical record of that check and re-binding it would need the password, which the
server never holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import structlog

from outpost.agent.v1 import agent_pb2
from outpost.auth import audit
from outpost.session import handshake, key_rotation
from services.registry import metrics
from services.registry.domain.collectors import Collector, CollectorState
from services.registry.store.enrollment_tokens import record_audit
from services.registry.store.models import CollectorRow
from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)

AUDIT_SERVICE = "registry"
AUDIT_METHOD = "RotateCollectorKey"
AUDIT_ROLE = "collector"


@dataclass(frozen=True)
class KeyRotationRequest:
    instance_uid: str
    old_public_key: bytes
    rotation: agent_pb2.KeyRotation
    handshake_hash: bytes
    session_id: str
    gateway_id: str
    remote_address: str


@dataclass(frozen=True)
class KeyRotationDecision:
    accepted: bool
    fingerprint: str
    """The key on record after the decision."""
    reason: str = ""
    revision: int = 0
    """Accepted: the revision of the CREDENTIALS_CHANGED event it appended (ADR 0034)."""


async def rotate(store: RegistryStore, request: KeyRotationRequest, now: datetime) -> KeyRotationDecision:
    """Decide and apply one rotation; see the module docstring for the rules."""
    old_fingerprint = handshake.fingerprint(request.old_public_key)
    revision = 0
    async with store.write(exclusive=True) as tx:
        known = await tx.collector_by_uid(request.instance_uid)
        reason = _refusal(request, known)
        if reason is None:
            assert known is not None
            new_key = request.rotation.new_public_key
            taken = await tx.session.scalar(
                sa.select(CollectorRow.instance_uid).where(CollectorRow.public_key == new_key)
            )
            if taken is not None:
                reason = "the new key belongs to another collector"
            elif not await tx.replace_key(known.instance_uid, request.old_public_key, new_key, now):
                reason = "the key on record changed meanwhile"
            else:
                await record_audit(tx.session, _audit_event(request, known.name, old_fingerprint, now))
                revision = await tx.credentials_changed(known, "identity key rotated", f"collector:{known.name}", now)
    if reason is not None:
        metrics.KEY_ROTATIONS.labels("refused").inc()
        log.warning(
            "collector_key_rotation_refused",
            instance_uid=request.instance_uid,
            fingerprint=old_fingerprint,
            session_id=request.session_id,
            gateway_id=request.gateway_id,
            reason=reason,
        )
        current = known.fingerprint if known is not None else old_fingerprint
        return KeyRotationDecision(False, current, reason)
    new_fingerprint = handshake.fingerprint(request.rotation.new_public_key)
    metrics.KEY_ROTATIONS.labels("accepted").inc()
    log.info(
        "collector_key_rotated",
        collector=known.name if known else "",
        instance_uid=request.instance_uid,
        old_fingerprint=old_fingerprint,
        fingerprint=new_fingerprint,
        session_id=request.session_id,
        gateway_id=request.gateway_id,
    )
    return KeyRotationDecision(True, new_fingerprint, revision=revision)


def _refusal(request: KeyRotationRequest, known: Collector | None) -> str | None:
    if known is None:
        return "unknown collector"
    if known.state is CollectorState.PENDING:
        return "a pending collector cannot rotate its key: register it first"
    if known.session_id != request.session_id:
        return "not the collector's current session"
    if known.public_key != request.old_public_key:
        return "the session's key is not the key on record"
    return key_rotation.problem(request.rotation, request.instance_uid, request.old_public_key, request.handshake_hash)


def _audit_event(request: KeyRotationRequest, name: str, old_fingerprint: str, now: datetime) -> audit.AuditEvent:
    new_fingerprint = handshake.fingerprint(request.rotation.new_public_key)
    return audit.AuditEvent(
        at=now,
        service=AUDIT_SERVICE,
        method=AUDIT_METHOD,
        principal=f"collector:{name}",
        role=AUDIT_ROLE,
        peer=request.remote_address,
        target=name,
        outcome="ok",
        detail=(
            f"collector '{name}' replaced its identity key {old_fingerprint} with {new_fingerprint} "
            f"in session {request.session_id} via gateway {request.gateway_id}"
        ),
    )
