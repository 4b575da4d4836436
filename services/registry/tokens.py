"""Admin tokens: create (the secret shown once), list, revoke, authenticate, bootstrap.

`Tokens` is what the servicer and the auth interceptor call. Authentication reads one
row by digest on every admin call (so a revocation holds from the next call, on every
service: the scheduler and gateways ask here too) and writes `last_used_at` at most once
a minute per token.

Bootstrap (first start): when no token was ever created, the registry makes
`bootstrap-admin` and writes its secret to the admin token file (mode 0600), where
`outpost-run` picks it up for `outpostctl`. When that file already holds a secret (a
Kubernetes Secret, or a restored data directory), its digest is registered instead, so
the operator keeps the credential they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from outpost import errors
from outpost.auth import bearer
from outpost.auth.principals import Principal, Role
from services.registry.domain import tokens as rules
from services.registry.domain.tokens import AdminToken
from services.registry.registry import utc_now
from services.registry.store import tokens as queries
from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)


class Tokens:
    def __init__(self, store: RegistryStore, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._now = clock

    async def create(self, name: str, role: Role, *, expires_in_seconds: int, actor: str) -> tuple[AdminToken, str]:
        """A new token and its secret (returned this once, stored only as a digest)."""
        name = rules.require_name(name)
        now = self._now()
        secret = bearer.new_secret()
        token = AdminToken(
            name=name,
            role=role,
            digest=bearer.digest(secret),
            created_at=now,
            created_by=actor,
            expires_at=rules.expiry(now, expires_in_seconds),
        )
        async with self._store.write(exclusive=False) as tx:
            if await queries.by_name(tx.session, name) is not None or not await queries.insert(tx.session, token):
                raise errors.AlreadyExists(f"a token named '{name}' exists; revoke it or choose another name")
        log.info("token_created", token=name, role=role.label, actor=actor, expires_at=token.expires_at)
        return token, secret

    async def list_tokens(self, *, include_revoked: bool) -> list[AdminToken]:
        async with self._store.read() as tx:
            return await queries.listed(tx.session, include_revoked=include_revoked)

    async def revoke(self, name: str, *, actor: str) -> AdminToken:
        name = rules.require_name(name)
        async with self._store.write(exclusive=False) as tx:
            token = await queries.by_name(tx.session, name)
            if token is None:
                raise errors.NotFound(f"no token named '{name}' (outpostctl tokens list)")
            if token.revoked_at is None:
                await queries.revoke(tx.session, name, self._now(), actor)
            revoked = await queries.by_name(tx.session, name)
        assert revoked is not None
        log.info("token_revoked", token=name, actor=actor)
        return revoked

    async def authenticate(self, token_digest: bytes) -> Principal:
        """The principal of a usable token; Unauthenticated (one message for every reason)."""
        now = self._now()
        async with self._store.read() as tx:
            token = await queries.by_digest(tx.session, token_digest)
        reason = rules.refusal_reason(token, now)
        if reason is not None:
            log.info("token_refused", reason=reason, token=token.name if token else "")
            raise errors.Unauthenticated("token is not valid: unknown, revoked or expired (outpostctl tokens list)")
        assert token is not None
        if rules.needs_touch(token, now):
            async with self._store.write(exclusive=False) as tx:
                await queries.touch(tx.session, token.name, now)
        return token.principal

    async def bootstrap(self, path: Path) -> bool:
        """Make sure the installation has its first admin token; True when one was created now.

        Nothing happens once any token exists: tokens are then the admins' business.
        """
        async with self._store.read() as tx:
            if await queries.any_token(tx.session):
                return False
        secret = _existing_secret(path) or bearer.new_secret()
        now = self._now()
        token = AdminToken(
            name=rules.BOOTSTRAP_NAME,
            role=Role.ADMIN,
            digest=bearer.digest(secret),
            created_at=now,
            created_by="bootstrap",
        )
        async with self._store.write(exclusive=False) as tx:
            if not await queries.insert(tx.session, token):
                return False  # another replica did it first, from the same file
        if _existing_secret(path) != secret:
            bearer.write_secret_file(path, secret)
        log.warning(
            "admin_token_created",
            token=rules.BOOTSTRAP_NAME,
            path=str(path),
            advice="outpostctl finds it through the context `outpost-run` writes; "
            "create personal tokens (outpostctl tokens create) and revoke this one when you like",
        )
        return True


def _existing_secret(path: Path) -> str | None:
    try:
        return bearer.read_secret_file(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise errors.FailedPrecondition(f"cannot use the admin token file {path}: {exc}") from exc
