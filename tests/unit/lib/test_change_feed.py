"""ChangeFeed resume: a watcher that reconnects never skips an event committed meanwhile.

The store here is an in-memory events table behind the feed's two-read `EventStore`
protocol; the race is forced by committing an event between the feed's page read and
its newest-revision read, exactly where a concurrent writer can land.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from prometheus_client import CollectorRegistry, Gauge

from outpost.change_feed import ChangeFeed


@dataclass(frozen=True)
class Event:
    revision: int
    bookmark: bool = False


class EventsTable:
    def __init__(self, revisions: Sequence[int]) -> None:
        self.events = [Event(r) for r in revisions]
        self.after_page_read: list[int] = []
        """Revisions to commit right after the next empty page read (the race)."""

    async def newest_revision(self) -> int:
        return max((e.revision for e in self.events), default=0)

    async def events_after(self, since: int, limit: int, /) -> Sequence[Event]:
        page = [e for e in self.events if e.revision > since][:limit]
        if not page and self.after_page_read:
            self.events += [Event(r) for r in self.after_page_read]
            self.after_page_read = []
        return page


class Feed(ChangeFeed[Event]):
    task_name: ClassVar[str] = "test-feed-poller"
    watchers: ClassVar[Gauge] = Gauge("test_feed_watchers", "open watches", registry=CollectorRegistry())

    def bookmark(self, revision: int) -> Event:
        return Event(revision, bookmark=True)


async def first_events(feed: Feed, since: int, count: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(5):
        async for event in feed.watch(since):
            out.append(event)
            if len(out) == count:
                break
    return out


async def test_resumed_watch_delivers_an_event_committed_between_its_two_reads() -> None:
    table = EventsTable([1, 2, 3])
    table.after_page_read = [4]
    feed = Feed(table, poll_interval=0.01)
    await feed.start()
    try:
        events = await first_events(feed, since=3, count=2)
    finally:
        await feed.close()
    assert events == [Event(3, bookmark=True), Event(4)]


async def test_resumed_watch_from_a_replaced_database_moves_back_to_its_newest_revision() -> None:
    table = EventsTable([1, 2])
    feed = Feed(table, poll_interval=0.01)
    await feed.start()
    try:
        events = await first_events(feed, since=9, count=1)
    finally:
        await feed.close()
    assert events == [Event(2, bookmark=True)]


async def test_fresh_watch_starts_at_the_newest_revision() -> None:
    table = EventsTable([1, 2, 3])
    feed = Feed(table, poll_interval=0.01)
    await feed.start()
    try:
        events = await first_events(feed, since=0, count=1)
    finally:
        await feed.close()
    assert events == [Event(3, bookmark=True)]
