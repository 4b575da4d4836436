"""The gateway's watched cache of registered collectors (ADR 0034).

What a gateway needs to verify a known collector's handshake itself: its identity key,
encryption key, state, canonical name and zone, and its service-password verifiers
(SCRAM StoredKey with salt and costs; never a password). The registry's collector watch
keeps it current, list-then-watch like everything the gateway follows:

- **List.** `resync` reads every registered collector (`ListCollectorCredentials`, paged)
  after each gap of the watch: the first bookmark of every (re)connection, and a rewound
  history. What was read replaces the cache whole; a collector that is no longer listed
  (removed, or pending again) is gone from it.
- **Watch.** Every event naming a collector — state changed (disable, enable, register),
  removed, credentials changed (key rotation, `set-password`) — drops its entry at once,
  before the event reaches anything else, and (unless removed) queues it to be read
  again. Until that read lands, the collector's handshakes go to the registry as before:
  a cache miss is never a refusal and never an admission.
- **Freshness.** The cache answers only while it is *fresh*: its watch stream is open,
  resynced since it (re)opened, and heard from (any event or bookmark; the registry sends
  a bookmark every `--watch-bookmark-interval` of silence) within `max_staleness`. A
  gateway whose watch is behind does not admit from what it last knew.

A read queued by an event is applied only if no later event named that collector while it
was in flight (a per-collector event counter), so an older read never overwrites a newer
drop. Everything runs on the gateway's event loop; nothing here blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from outpost.password_proof import PasswordParameters
from outpost.session.server import ServerState
from services.gateway import metrics

log = structlog.get_logger(__name__)

DEFAULT_MAX_STALENESS_SECONDS = 25.0
"""Two of the registry's default 10 s bookmark intervals, and some room."""
REFETCH_BATCH = 500
REFETCH_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class StoredPassword:
    """One SCRAM credential on record: checks a proof, cannot make one."""

    slot: str
    parameters: PasswordParameters
    stored_key: bytes
    accepted_until: datetime | None = None

    def __repr__(self) -> str:  # never print the stored key
        return f"StoredPassword(slot={self.slot!r}, accepted_until={self.accepted_until})"

    def accepted(self, now: datetime) -> bool:
        return self.accepted_until is None or now < self.accepted_until


@dataclass(frozen=True)
class CachedCollector:
    """A registered collector as `ListCollectorCredentials` lists it."""

    instance_uid: str
    name: str
    zone: str
    state: ServerState
    state_reason: str
    revision: int
    public_key: bytes
    encryption_public_key: bytes
    enrolled: bool
    passwords: tuple[StoredPassword, ...]
    version: str
    sealing_algorithms: tuple[str, ...]
    access_key_id: str
    password_last_proved: str

    def __repr__(self) -> str:
        return f"CachedCollector(name={self.name!r}, state={self.state.value}, revision={self.revision})"


@dataclass(frozen=True)
class CredentialsChanged:
    """The watch's CREDENTIALS_CHANGED event: the collector's key or password changed."""

    revision: int
    instance_uid: str


Fetch = Callable[[Sequence[str]], Awaitable[list[CachedCollector]]]
"""Read registered collectors: the ones named, or every one when none is named."""


class CollectorCache:
    def __init__(
        self,
        fetch: Fetch,
        *,
        max_staleness: float = DEFAULT_MAX_STALENESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.max_staleness = max_staleness
        self._clock = clock
        self._entries: dict[str, CachedCollector] = {}
        self._events = 0
        self._last_event: dict[str, int] = {}
        """instance_uid -> the number of the last event that named it (`_events` counts them)."""
        self._queued: set[str] = set()
        self._wakeup = asyncio.Event()
        self.connected = False
        self.synced = False
        self.heard_at = float("-inf")
        self.resyncs = 0

    # --- what the handshake path asks -------------------------------------------------
    def fresh(self) -> bool:
        """The watch is open, resynced since it opened and heard from within `max_staleness`."""
        return self.connected and self.synced and self._clock() - self.heard_at <= self.max_staleness

    def staleness(self) -> float:
        """Seconds since the watch was last heard from (inf: never)."""
        return self._clock() - self.heard_at

    def get(self, instance_uid: str) -> CachedCollector | None:
        """The entry to verify against; None when unknown or the cache is not fresh."""
        if not self.fresh():
            return None
        return self._entries.get(instance_uid)

    def knows(self, instance_uid: str) -> bool:
        """Whether the collector is registered as far as the cache knows (fresh or not):
        decides which lane a registry call takes (known or first contact)."""
        return instance_uid in self._entries or instance_uid in self._last_event

    def learned(self, before: CachedCollector, after: CachedCollector) -> None:
        """The registry accepted a handshake of `before` and recorded what `after` says (the
        hello's version, sealing algorithms, access key, password slot): keep that, unless an
        event replaced the entry meanwhile."""
        if self._entries.get(before.instance_uid) is before:
            self._entries[before.instance_uid] = after

    def __len__(self) -> int:
        return len(self._entries)

    # --- what the watch feeds ---------------------------------------------------------
    def observe(self, open_stream: Callable[[int], AsyncIterator[Any]]) -> Callable[[int], AsyncIterator[Any]]:
        """Wrap the watch's stream: every item (bookmarks too) proves the watch current; a
        stream that ends or fails makes the cache stale until the next resync."""

        async def stream(since: int) -> AsyncIterator[Any]:
            self.synced = False
            try:
                async for item in open_stream(since):
                    self.connected = True
                    self.heard_at = self._clock()
                    yield item
            finally:
                self.connected = False
                self.synced = False
                metrics.COLLECTOR_CACHE_FRESH.set(0)

        return stream

    def apply(self, item: Any) -> None:
        """A watch event naming a collector: drop its entry now, read it again later."""
        uid = getattr(item, "instance_uid", "")
        if not uid:
            return
        self._events += 1
        self._last_event[uid] = self._events
        self._entries.pop(uid, None)
        removed = getattr(getattr(item, "kind", None), "value", "") == "removed"
        pending = getattr(item, "state", None) is ServerState.PENDING
        if not removed and not pending:
            self._queued.add(uid)
            self._wakeup.set()
        metrics.COLLECTOR_CACHE_ENTRIES.set(len(self._entries))

    async def resync(self) -> None:
        """Read every registered collector (the "list" of list-then-watch); replaces the cache."""
        started = self._events
        listed = await self._fetch(())
        entries = {c.instance_uid: c for c in listed if self._last_event.get(c.instance_uid, 0) <= started}
        self._entries = entries
        # Events seen before this list are folded into it; their reads need not happen.
        self._last_event = {uid: n for uid, n in self._last_event.items() if n > started}
        self._queued &= set(self._last_event)
        self.synced = True
        self.heard_at = self._clock()
        self.resyncs += 1
        metrics.COLLECTOR_CACHE_ENTRIES.set(len(entries))
        metrics.COLLECTOR_CACHE_FRESH.set(1)
        log.info("collector_cache_resynced", collectors=len(entries), resyncs=self.resyncs)

    async def run(self) -> None:
        """Read the collectors events named, in batches, for as long as the gateway runs."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queued:
                batch = sorted(self._queued)[:REFETCH_BATCH]
                self._queued -= set(batch)
                marks = {uid: self._last_event.get(uid, 0) for uid in batch}
                try:
                    found = await self._fetch(batch)
                except Exception as exc:  # the registry is away: keep them queued, try again
                    log.warning("collector_cache_read_failed", collectors=len(batch), error=type(exc).__name__)
                    self._queued |= set(batch)
                    await asyncio.sleep(REFETCH_RETRY_SECONDS)
                    continue
                for collector in found:
                    if self._last_event.get(collector.instance_uid, 0) == marks.get(collector.instance_uid):
                        self._entries[collector.instance_uid] = collector
                log.info("collector_cache_read", asked=len(batch), found=len(found))
                for uid, mark in marks.items():  # read and no newer event: nothing left to guard
                    if uid not in self._queued and self._last_event.get(uid) == mark:
                        del self._last_event[uid]
                metrics.COLLECTOR_CACHE_ENTRIES.set(len(self._entries))

    def tick_metrics(self) -> None:
        metrics.COLLECTOR_CACHE_FRESH.set(1 if self.fresh() else 0)


async def report_freshness(cache: CollectorCache, every: float = 1.0) -> None:
    """Keep the freshness gauge true while nothing else touches the cache."""
    while True:
        cache.tick_metrics()
        await asyncio.sleep(every)
