"""Zone enrollment tokens: create (the token text shown once), list, revoke.

`EnrollmentTokens` is what the servicer calls for the admin side; using a token is part of
the handshake (`enrollment`, called by `Registry.authenticate`). The secret leaves the
registry once, to the admin who created the token, inside the token text; the registry
keeps only its SHA-256 (ADR 0022), so a stolen database enrolls nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from outpost.enrollment_token import EnrollmentToken, new_secret, new_token_id
from services.registry.domain import enrollment_tokens as rules
from services.registry.domain.enrollment_tokens import EnrollmentTokenRecord, StoredEnrollmentToken
from services.registry.registry import utc_now
from services.registry.store import enrollment_tokens as queries
from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)


class EnrollmentTokens:
    def __init__(self, store: RegistryStore, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._now = clock

    def now(self) -> datetime:
        return self._now()

    async def create(
        self,
        name: str,
        *,
        zone: str,
        uses: int = 0,
        expires_in_seconds: int = 0,
        cidrs: list[str] | tuple[str, ...] = (),
        actor: str,
    ) -> tuple[EnrollmentTokenRecord, EnrollmentToken]:
        """A new token and its text form (returned this once; only its digest is stored)."""
        name = rules.require_name(name)
        now = self._now()
        record = EnrollmentTokenRecord(
            token_id=new_token_id(),
            name=name,
            zone=rules.require_zone(zone),
            created_at=now,
            created_by=actor,
            uses_allowed=rules.require_uses(uses),
            cidrs=rules.require_cidrs(cidrs),
            expires_at=rules.expiry(now, expires_in_seconds),
        )
        token = EnrollmentToken(record.token_id, new_secret())
        async with self._store.write(exclusive=False) as tx:
            if await queries.live_by_name(tx.session, name) is not None:
                raise rules.name_taken(name)
            if not await queries.insert(tx.session, StoredEnrollmentToken(record, token.digest)):
                raise rules.name_taken(name)
        log.info(
            "enrollment_token_created",
            enrollment_token=name,
            token_id=record.token_id,
            zone=record.zone,
            uses_allowed=record.uses_allowed,
            cidrs=list(record.cidrs),
            expires_at=record.expires_at,
            actor=actor,
        )
        return record, token

    async def list_tokens(self, *, include_revoked: bool) -> list[EnrollmentTokenRecord]:
        async with self._store.read() as tx:
            return await queries.listed(tx.session, include_revoked=include_revoked)

    async def revoke(self, name: str, *, actor: str) -> EnrollmentTokenRecord:
        """Revoke the live token named `name`; revoking a revoked name again shows it, changes nothing.

        Collectors it already enrolled stay registered: disable or remove them one by one.
        """
        name = rules.require_name(name)
        async with self._store.write(exclusive=False) as tx:
            live = await queries.live_by_name(tx.session, name)
            if live is not None:
                await queries.revoke(tx.session, live.token_id, self._now(), actor)
            revoked = await queries.latest_by_name(tx.session, name)
        if revoked is None:
            raise rules.not_found(name)
        if live is not None:
            log.info("enrollment_token_revoked", enrollment_token=name, token_id=revoked.token_id, actor=actor)
        return revoked
