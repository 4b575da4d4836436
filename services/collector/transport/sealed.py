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

from outpost.access_key import AccessKey
from outpost.agent.v1 import agent_pb2
from outpost.session.handshake import fingerprint as key_fingerprint
from outpost.session.noise import RekeyPolicy
from outpost.session.noise.handshake import Pattern
from outpost.session.noise.wire import InitiatorEnd
from services.collector.domain.server_url import Family
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
    """

    access_key: AccessKey
    static_private: bytes = field(repr=False)
    pins: ServerPinStore
    policy: RekeyPolicy = field(default_factory=RekeyPolicy)
    clock: Callable[[], float] = time.time
    _failed: set[bytes] = field(default_factory=set, repr=False)
    last_attempted: bytes | None = field(default=None, repr=False)
    """The key the latest `server_key()` chose (what a failure is charged to)."""

    def pinned(self) -> list[PinnedKey]:
        """Every usable pinned key, in the order to try them now (ServerPinError: a damaged pin)."""
        stored = self.pins.load_all()
        retired = {k.public_key for k in stored if k.retired}
        keys: list[PinnedKey] = []
        if self.access_key.server_public_key is not None:
            keys.append(PinnedKey(self.access_key.server_public_key))
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
        if any(k.public_key == public_key for k in stored) or public_key == self.access_key.server_public_key:
            return
        usable = [k for k in stored if not k.retired]
        if self.access_key.server_public_key is None and not usable:
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
        end = InitiatorEnd(
            static_private=sessions.static_private,
            access_key_id=sessions.access_key.key_id,
            psk=sessions.access_key.secret,
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

    async def close(self) -> None:
        await self._inner.close()
