"""The gateway's access keys and server keys, both from the registry, answered from memory.

`AccessKeyCache` is fed by the registry's WatchAccessKeys (kept open by a
`ResumableWatch`, resumed from the newest revision after a break). The sealed-session
handshake asks it `grant(key_id)` before it reads anything of a collector, so the answer
must be local and current: a revocation is gone from the cache the moment its event
arrives (well within a second of the admin's command), and expiry is checked at every
call against the clock, so an expired key admits nobody even if no event says so.

Each watch event carries a key's *current* state at its revision. The cache keeps the
revision it last applied per key and ignores older news, so a revoked key is never
resurrected by an event that was in flight when a resync read the newer state. After
every gap (each reconnection, or a registry whose history went back) the watch's resync
re-reads the whole list and replaces the cache: a key that vanished from a restored
registry database is dropped, not trusted until the gateway restarts.

A rotated key (`access-keys rotate`, ADR 0024) arrives with `replaced_by`: the cache
remembers which key replaced which, and `successor(key_id)` follows that chain to the
newest valid key of the name. Each replacement learned is told to every live session
(`AccessKeysReplaced`); a session whose handshake used a replaced key hands its
collector the successor's text over the sealed channel.

`ServerKeys` holds the server's Noise static key pair(s) (GetServerKeys), read before
the gateway serves any collector, re-read at every resync of the access-key watch and
every `--server-key-refresh` seconds (`refresh_server_keys`). During a rotation (ADR
0024) it holds the current key, the announced next one and the replaced one still
accepted; which one is current it judges by the keys' activation times against its own
clock, so every replica switches at the activation instant without asking the registry
then. A replaced key whose window has ended is dropped only once a newer key is known:
a gateway that could not reach the registry keeps proving the key it has rather than
none. `private_keys()` lists every accepted key, current first, for the handshake's
responder to try (at most three). Each change the refresh finds is told to every live
session (`ServerKeysChanged`), which announces the newest key to its collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from outpost import errors
from outpost.access_key import KEY_BYTES, AccessKeyGrant
from outpost.session.handshake import fingerprint
from services.gateway import metrics
from services.gateway.peers.registry_client import AccessKeyBookmark, AccessKeyChange, RegistryClient, ServerKeyPair
from services.gateway.peers.resumable_watch import ResumableWatch
from services.gateway.sessions.hub import SessionHub

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Entry:
    grant: AccessKeyGrant
    expires_at: datetime | None
    replaced_by: str = ""


@dataclass(frozen=True)
class AccessKeysReplaced:
    """Told to every live session when an access key was rotated: hand out the successor."""


class AccessKeyCache:
    """The valid access keys this gateway knows, by key id; no I/O (the watch feeds it)."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._now = clock
        self._entries: dict[str, _Entry] = {}
        self._revisions: dict[str, int] = {}
        """The revision last applied per key id, revoked keys included (their tombstone)."""

    def grant(self, key_id: str) -> AccessKeyGrant | None:
        """The grant of a key that is known, not revoked and not expired now; else None."""
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if entry.expires_at is not None and self._now() >= entry.expires_at:
            return None
        return entry.grant

    def successor(self, key_id: str) -> AccessKeyGrant | None:
        """The newest valid key that replaced `key_id` (through any chain of rotations); None when none.

        A successor revoked or expired is not handed out: a collector would only be refused
        with it; its next connection then still uses the key it has, for as long as that works.
        """
        found: AccessKeyGrant | None = None
        seen = {key_id}
        entry = self._entries.get(key_id)
        while entry is not None and entry.replaced_by and entry.replaced_by not in seen:
            seen.add(entry.replaced_by)
            grant = self.grant(entry.replaced_by)
            if grant is not None:
                found = grant
            entry = self._entries.get(entry.replaced_by)
        return found

    def valid_count(self) -> int:
        """Keys that would be granted now (the `outpost_gateway_access_keys` gauge)."""
        now = self._now()
        return sum(1 for e in self._entries.values() if e.expires_at is None or now < e.expires_at)

    def apply(self, change: AccessKeyChange) -> bool:
        """One watch event: add or replace the key, or forget it once revoked.

        True when the event says the key was replaced by a rotation this cache did not know of.
        """
        if change.revision <= self._revisions.get(change.key_id, 0):
            return False
        self._revisions[change.key_id] = change.revision
        if change.revoked:
            if self._entries.pop(change.key_id, None) is not None:
                log.info("access_key_revoked", key_id=change.key_id, access_key=change.name, revision=change.revision)
            return False
        if len(change.psk) != KEY_BYTES:
            log.error("access_key_malformed", key_id=change.key_id, access_key=change.name, psk_bytes=len(change.psk))
            self._entries.pop(change.key_id, None)
            return False
        before = self._entries.get(change.key_id)
        self._entries[change.key_id] = _Entry(
            AccessKeyGrant(key_id=change.key_id, name=change.name, psk=change.psk, zone=change.zone),
            change.expires_at,
            change.replaced_by,
        )
        rotated = bool(change.replaced_by) and (before is None or before.replaced_by != change.replaced_by)
        if rotated:
            log.info(
                "access_key_replaced",
                key_id=change.key_id,
                access_key=change.name,
                replaced_by=change.replaced_by,
                valid_until=change.expires_at.isoformat() if change.expires_at else None,
            )
        return rotated

    def replace(self, listed: list[AccessKeyChange]) -> bool:
        """The whole state, read after a gap: what is not listed is gone.

        True when a replacement appeared that the cache did not hold before the gap.
        """
        before = dict(self._entries)
        self._entries.clear()
        self._revisions.clear()
        for change in listed:
            self.apply(change)
        dropped = set(before) - set(self._entries)
        if dropped:
            log.warning("access_keys_dropped_on_resync", key_ids=sorted(dropped))
        return any(
            entry.replaced_by and (key_id not in before or before[key_id].replaced_by != entry.replaced_by)
            for key_id, entry in self._entries.items()
        )


@dataclass(frozen=True)
class ServerKeysChanged:
    """Told to every live session when the server keys changed: announce the newest one."""


@dataclass(frozen=True)
class Announcement:
    """The newest server key, for collectors whose session was opened with an older one."""

    public_key: bytes
    activates_at: datetime


_EPOCH = datetime.fromtimestamp(0, UTC)


class ServerKeys:
    """The server's Noise static key pair(s), current first; empty until `load` succeeds."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._now = clock
        self._pairs: list[ServerKeyPair] = []

    def load(self, pairs: list[ServerKeyPair]) -> bool:
        """Take the registry's answer; True when the accepted keys changed.

        Unavailable for an answer without exactly one well-formed current key: the keys
        held before stay in force.
        """
        current = [p for p in pairs if p.current]
        if len(current) != 1:
            raise errors.Unavailable(f"the registry sent {len(current)} current server keys, not 1")
        if any(len(p.private_key) != KEY_BYTES or len(p.public_key) != KEY_BYTES for p in pairs):
            raise errors.Unavailable("the registry sent a malformed server key")
        before = [p.public_key for p in self._pairs]
        self._pairs = list(pairs)
        changed = before != [p.public_key for p in self._pairs]
        if changed:
            announced = self.announcement()
            log.info(
                "server_keys_loaded",
                fingerprint=self.fingerprint(),
                keys=len(self._pairs),
                newest=fingerprint(announced.public_key) if announced is not None else None,
            )
        return changed

    @property
    def loaded(self) -> bool:
        return bool(self._pairs)

    def private_keys(self) -> list[bytes]:
        """Every private key a handshake may be addressed to now, current first."""
        return [p.private_key for p in self._accepted()]

    def public_key(self) -> bytes:
        """The current public key: what this gateway proves to first contacts and collectors pin."""
        return self._accepted()[0].public_key

    def fingerprint(self) -> str:
        return fingerprint(self.public_key())

    def announcement(self) -> Announcement | None:
        """The newest accepted key (the announced next one, else the current one) and its activation."""
        pairs = self._accepted()
        newest = max(pairs, key=_activation)
        return Announcement(newest.public_key, _activation(newest))

    def _accepted(self) -> list[ServerKeyPair]:
        """The keys accepted now, current first: the rule of the registry's `effective`, on our clock."""
        if not self._pairs:
            raise errors.Unavailable("the server key has not been read from the registry yet")
        now = self._now()
        activated = [p for p in self._pairs if _activation(p) <= now]
        current = max(activated, key=lambda p: (_activation(p), p.current), default=None)
        if current is None:  # a clock behind the registry's: trust its word
            current = next(p for p in self._pairs if p.current)
        others = [
            p
            for p in self._pairs
            if p is not current and (_activation(p) > now or (p.retires_at is not None and now < p.retires_at))
        ]
        return [current, *others]


def _activation(pair: ServerKeyPair) -> datetime:
    return pair.activated_at or _EPOCH


async def refresh_server_keys(registry: RegistryClient, server_keys: ServerKeys, hub: SessionHub) -> None:
    """Re-read the server keys; tell every live session (streaming and polling) when they changed."""
    if server_keys.load(await registry.server_keys()):
        for session in hub.sessions():
            session.deliver(ServerKeysChanged())


async def refresh_server_keys_every(
    seconds: float, registry: RegistryClient, server_keys: ServerKeys, hub: SessionHub
) -> None:
    """The periodic refresh: a rotation announced by an admin reaches this gateway within `seconds`.

    A failed read is logged and retried at the next period; the keys held stay in force.
    """
    while True:
        await asyncio.sleep(seconds)
        try:
            await refresh_server_keys(registry, server_keys, hub)
        except Exception as exc:  # the loop must outlive a registry outage
            log.warning("server_keys_refresh_failed", error=str(exc) or type(exc).__name__)


def access_key_watch(
    registry: RegistryClient,
    cache: AccessKeyCache,
    server_keys: ServerKeys,
    hub: SessionHub,
) -> ResumableWatch:
    """The watch feeding `cache`; its resync re-reads every key and the server keys after each gap."""

    def tell_sessions() -> None:
        for session in hub.sessions():
            session.deliver(AccessKeysReplaced())

    async def resync() -> None:
        await refresh_server_keys(registry, server_keys, hub)
        revision, listed = await registry.access_keys()
        if cache.replace(listed):
            tell_sessions()
        log.info("access_keys_listed", revision=revision, valid=cache.valid_count())

    def apply(item: object) -> None:
        assert isinstance(item, AccessKeyChange)
        if cache.apply(item):
            tell_sessions()

    metrics.ACCESS_KEYS.set_function(cache.valid_count)
    return ResumableWatch("access-keys", registry.watch_access_keys, apply, AccessKeyBookmark, resync=resync)
