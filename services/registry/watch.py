"""WatchCollectors: list-then-watch over the `collector_events` change log.

Every state change and removal of a collector appends one row to `collector_events`;
`outpost.change_feed` explains how a watch follows that table (bookmarks, wake-ups,
the cross-replica poller, shutdown). Here it is only bound to the registry's events.
"""

from __future__ import annotations

from outpost.change_feed import ChangeFeed
from services.registry import metrics
from services.registry.domain.collectors import CollectorEvent, EventKind


class WatchHub(ChangeFeed[CollectorEvent]):
    """The registry's change feed: `notify` after each commit, `watch` per stream."""

    task_name = "registry-watch-poller"
    watchers = metrics.WATCHERS

    def bookmark(self, revision: int) -> CollectorEvent:
        return CollectorEvent(revision=revision, kind=EventKind.BOOKMARK)
