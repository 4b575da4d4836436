"""The sealed session around any transport: one wrapper for TCP, WebSocket, gRPC and polling.

A raw transport (`services.collector.transport`) moves opaque frames; this wrapper runs
the Noise handshake over them (`establish()`), then seals every envelope the connection
sends and opens every record it receives, with the same `send`/`recv`/`close` calls, so
the connection loop does not know it is sealed. The wire format is in
`outpost.session.noise.wire`; the design and what it protects in ADR 0019.

Polling needs nothing special: its transport buffers `send()` and polls on `recv()`, so
the handshake spans polls (message 1 in the first poll, the reply in its response,
message 3 and the Hello record in the next).

Failures stay typed: a record that does not open raises `SealedSessionError` (a
`RemoteProtocolError`: the session fails with its reason and sends a sealed Disconnect);
a refusal before keys exist raises `HandshakeRefused`, a reply that does not check out
`SealedSessionError`, both from `establish()`, which the supervisor turns into a backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from outpost.access_key import AccessKey, AccessKeyFormatError
from outpost.agent.v1 import agent_pb2
from outpost.session.handshake import fingerprint as key_fingerprint
from outpost.session.noise import RekeyPolicy
from outpost.session.noise.handshake import Pattern
from outpost.session.noise.wire import InitiatorEnd
from services.collector.domain.server_url import Family
from services.collector.store.access_key_store import AccessKeyStore
from services.collector.store.server_pin import MAX_KEYS, PinnedKey, ServerPinStore
from services.collector.transport import Transport, TransportError

log = structlog.get_logger(__name__)

NOISE_TRANSPORT: dict[Family, str] = {"tcp": "tcp", "ws": "websocket", "http": "poll", "grpc": "grpc"}
"""The transport name each URL family binds into the Noise prologue."""


@dataclass
class SealedSessions:
    """What this collector seals with: its access key, its Noise static key, the server keys it pins.

    Pinned keys: the access key's, then those of `server.pin` (read per connection, so a
    deleted pin takes effect on the next one). During a server key rotation (ADR 0024)
    the pin also holds the announced next key with its activation time. Which one a
    connection is addressed to (`server_key`):

    - the newest key whose activation has come (an announced one from its activation
      on; the access key's and a first contact's count as active since always), then
      the others, newest first;
    - a key whose handshake just failed is skipped on the next attempts until every
      pinned key failed once; so a gateway that does not hold the new key yet (or no
      longer the old one) costs one attempt, and the collector never falls back to first
      contact;
    - once an announced key was proven after its activation, every older key is marked
      retired in `server.pin` and never tried again (an access key carrying it included):
      an attacker who later learns a retired private key cannot make this collector
      fall back to it.

    Access keys (ADR 0024): `access_key` is the configured one (`--access-key-file` /
    `OUTPOST_ACCESS_KEY`); `stored` is the data directory's `access.key`, the key the
    server handed over after an `access-keys rotate`. A connection uses the stored key
    when there is one, and the configured key when there is none or the stored one was
    refused (ACCESS_KEY_REFUSED) — then the stored one is tried again only after the
    configured one was refused too. The server keys of both keys stay pinned (merged
    with `server.pin`): taking a new access key never drops a pin.
    """

    access_key: AccessKey
    static_private: bytes = field(repr=False)
    pins: ServerPinStore
    stored: AccessKeyStore | None = None
    policy: RekeyPolicy = field(default_factory=RekeyPolicy)
    clock: Callable[[], float] = time.time
    _failed: set[bytes] = field(default_factory=set, repr=False)
    last_attempted: bytes | None = field(default=None, repr=False)
    """The key the latest `server_key()` chose (what a failure is charged to)."""
    _refused_keys: set[str] = field(default_factory=set, repr=False)
    last_access_key: AccessKey | None = field(default=None, repr=False)
    """The access key the latest `access_key_for_connection()` chose (what a refusal is charged to)."""

    def access_key_for_connection(self) -> AccessKey:
        """The access key this connection presents: the stored one first, then the configured one."""
        candidates = self._access_keys()
        usable = [k for k in candidates if k.key_id not in self._refused_keys]
        if not usable:
            self._refused_keys.clear()
            usable = candidates
        self.last_access_key = usable[0]
        return usable[0]

    def access_key_refused(self) -> None:
        """The gateway refused the access key last presented: present the other one next time."""
        if self.last_access_key is not None and len(self._access_keys()) > 1:
            self._refused_keys.add(self.last_access_key.key_id)
            log.warning(
                "access_key_refused",
                key_id=self.last_access_key.key_id,
                note="the next connection presents the other access key this collector holds",
            )

    def access_key_received(self, text: str) -> None:
        """Store the key the server handed over after a rotation; used from the next connection on."""
        try:
            key = AccessKey.parse(text)
        except AccessKeyFormatError as exc:
            log.warning("access_key_update_malformed", error=str(exc))
            return
        if self.stored is None or key.key_id in {k.key_id for k in self._access_keys()}:
            return
        try:
            self.stored.save(key)
        except OSError as exc:
            log.error("access_key_update_save_failed", path=str(self.stored.path), error=str(exc))
            return
        self._refused_keys.discard(key.key_id)
        log.warning(
            "access_key_rotated",
            key_id=key.key_id,
            path=str(self.stored.path),
            note="the server handed over a new access key (access-keys rotate); it is used from the next "
            "connection on. Update --access-key-file / OUTPOST_ACCESS_KEY for reinstalls when convenient",
        )

    def _access_keys(self) -> list[AccessKey]:
        """The keys this collector holds, in the order to present them: stored, then configured."""
        stored = self.stored.load() if self.stored is not None else None
        if stored is None or stored.key_id == self.access_key.key_id:
            return [self.access_key]
        return [stored, self.access_key]

    def _access_key_pins(self) -> list[bytes]:
        """The server keys carried by the access keys held (merged: a new key never drops a pin)."""
        found: list[bytes] = []
        for key in self._access_keys():
            if key.server_public_key is not None and key.server_public_key not in found:
                found.append(key.server_public_key)
        return found

    def pinned(self) -> list[PinnedKey]:
        """Every usable pinned key, in the order to try them now (ServerPinError: a damaged pin)."""
        stored = self.pins.load_all()
        retired = {k.public_key for k in stored if k.retired}
        keys: list[PinnedKey] = [PinnedKey(k) for k in self._access_key_pins()]
        keys += [k for k in stored if not k.retired and k.public_key not in {p.public_key for p in keys}]
        keys = [k for k in keys if k.public_key not in retired]
        now = self.clock()
        return sorted(keys, key=lambda k: _try_order(k, now))

    def server_key(self) -> bytes | None:
        """The key to address this connection to (IK), or None for first contact (XX).

        A damaged pin raises `ServerPinError`: refusing is safer than silently trusting
        whoever answers.
        """
        keys = [k.public_key for k in self.pinned()]
        if not keys:
            self.last_attempted = None
            return None
        untried = [k for k in keys if k not in self._failed]
        if not untried:
            self._failed.clear()
            untried = keys
        self.last_attempted = untried[0]
        return untried[0]

    def handshake_failed(self) -> None:
        """The server did not prove the key last attempted: try another pinned one next time."""
        if self.last_attempted is not None:
            self._failed.add(self.last_attempted)

    def handshake_proven(self, key: bytes) -> None:
        """The server proved `key` (IK): forget failures; an announced key now active retires older ones."""
        self._failed.clear()
        stored = self.pins.load_all()
        proven = next((k for k in stored if k.public_key == key and not k.retired), None)
        if proven is None or proven.activates_at is None or proven.activates_at > self.clock():
            return
        older = [k for k in self.pinned() if k.public_key != key and _activation(k) < proven.activates_at]
        if not older:
            return
        kept = [PinnedKey(key)] + [k for k in stored if k.public_key != key and k not in older and not k.retired]
        retired = [PinnedKey(k.public_key, retired=True) for k in older]
        retired += [k for k in stored if k.retired and k.public_key not in {r.public_key for r in retired}]
        self._save((kept + retired)[:MAX_KEYS], "server_key_rotated", fingerprint=key_fingerprint(key))
        log.warning(
            "server_key_rotated",
            fingerprint=key_fingerprint(key),
            retired=[key_fingerprint(k.public_key) for k in older],
            note="the server proved its new key; the old one is no longer trusted",
        )

    def announced(self, public_key: bytes, activates_at: float) -> None:
        """Pin a key the server announced over this sealed session, for use from `activates_at` on."""
        if len(public_key) != len(self.static_private):
            log.warning("server_key_announcement_malformed", key_bytes=len(public_key))
            return
        stored = self.pins.load_all()
        carried = self._access_key_pins()
        if any(k.public_key == public_key for k in stored) or public_key in carried:
            return
        usable = [k for k in stored if not k.retired]
        if not carried and not usable:
            return  # nothing pinned (cannot happen on a sealed session): first contact pins the current key
        announced = PinnedKey(public_key, activates_at)
        # Keep the newest usable keys and the retired markers, within the file's bound.
        keep = sorted(usable, key=_activation, reverse=True)[: MAX_KEYS - 2]
        retired = [k for k in stored if k.retired][: MAX_KEYS - 1 - len(keep)]
        if self._save([*keep, announced, *retired], "server_key_announcement_pin_failed"):
            log.warning(
                "server_key_announced",
                fingerprint=key_fingerprint(public_key),
                activates_at=activates_at,
                path=str(self.pins.path),
                note="the server announced its next key over the sealed session; it is pinned beside the "
                "current one and used from its activation on",
            )

    def _save(self, keys: list[PinnedKey], failure_event: str, **context: object) -> bool:
        try:
            self.pins.save_all(keys)
        except OSError as exc:
            log.error(failure_event, path=str(self.pins.path), error=str(exc), **context)
            return False
        return True

    def pin(self, key: bytes, fingerprint: str) -> None:
        """Record a server key learned on first contact (after the server's first record opened)."""
        try:
            self.pins.save(key)
        except OSError as exc:
            log.error("server_key_pin_failed", fingerprint=fingerprint, path=str(self.pins.path), error=str(exc))
            return
        log.warning(
            "server_key_pinned",
            fingerprint=fingerprint,
            path=str(self.pins.path),
            advice="first contact: compare this fingerprint with the server's (outpostctl server info); "
            "from now on this collector talks only to a gateway that proves this key",
        )


def _activation(key: PinnedKey) -> float:
    return key.activates_at if key.activates_at is not None else float("-inf")


def _try_order(key: PinnedKey, now: float) -> tuple[int, float]:
    """Active keys first, the most recently activated first; then announced ones, soonest first."""
    activation = _activation(key)
    return (0, -activation) if activation <= now else (1, activation)


class SealedTransport:
    """A `Transport` whose frames are a sealed session; build it with `establish()`."""

    def __init__(
        self, inner: Transport, end: InitiatorEnd, sessions: SealedSessions, clock: Callable[[], float]
    ) -> None:
        self._inner = inner
        self._end = end
        self._sessions = sessions
        self._clock = clock
        self._pinned = end.pinned

    @classmethod
    async def establish(
        cls,
        inner: Transport,
        sessions: SealedSessions,
        family: Family,
        clock: Callable[[], float] = time.monotonic,
    ) -> SealedTransport:
        """Run the handshake over `inner`; HandshakeRefused, SealedSessionError, TransportError
        or ServerPinError when no sealed session results (the caller closes `inner`)."""
        access_key = sessions.access_key_for_connection()
        end = InitiatorEnd(
            static_private=sessions.static_private,
            access_key_id=access_key.key_id,
            psk=access_key.secret,
            transport=NOISE_TRANSPORT[family],
            server_static=sessions.server_key(),
            policy=sessions.policy,
        )
        await inner.send(end.first_frame())
        reply = await inner.recv()
        if reply is None:
            raise TransportError("the gateway closed the connection during the sealed handshake")
        for frame in end.read_reply(reply, clock()):
            await inner.send(frame)
        log.debug("sealed_session_established", pattern=end.pattern.name, server_key=end.server_fingerprint)
        if end.pattern is Pattern.IK:
            sessions.handshake_proven(end.server_key)
        return cls(inner, end, sessions, clock)

    @property
    def handshake_hash(self) -> bytes:
        """The channel binding the Hello's proof signs."""
        return self._end.handshake_hash

    @property
    def pattern(self) -> str:
        return self._end.pattern.name

    async def send(self, payload: bytes) -> None:
        for record in self._end.seal(payload, self._clock()):
            await self._inner.send(record)

    async def recv(self) -> bytes | None:
        # Cancel-safe as the inner recv() is: a record is opened only once it arrived whole,
        # and fragments wait in the channel.
        while True:
            record = await self._inner.recv()
            if record is None:
                return None
            envelope = self._end.open(record)  # SealedSessionError when it does not authenticate
            if not self._pinned and (candidate := self._end.pin_candidate) is not None:
                self._pinned = True
                self._sessions.pin(candidate, self._end.server_fingerprint)
            if envelope is not None:
                return envelope

    def rotation_received(self, rotation: agent_pb2.Rotation) -> None:
        """A rotation the server told this sealed session about (ADR 0024)."""
        if rotation.HasField("server_key"):
            announced = rotation.server_key
            self._sessions.announced(announced.public_key, announced.activates_at_unix_ms / 1000)
        elif rotation.HasField("access_key"):
            self._sessions.access_key_received(rotation.access_key.access_key_text)

    async def close(self) -> None:
        await self._inner.close()
