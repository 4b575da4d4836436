"""The registry's watches: list-then-watch over a table's revisions.

`WatchHub` follows the `collector_events` change log (WatchCollectors): every state
change and removal of a collector appends one row. `AccessKeyFeed` follows the
`access_keys` rows themselves (WatchAccessKeys): every change gives a row the next
revision, so a page carries each changed key's current state, and a watch from
revision 0 lists every key before its first bookmark. `outpost.change_feed`
explains how a watch follows its table (bookmarks, wake-ups, the cross-replica poller,
shutdown); here each is only bound to its events.
"""

from __future__ import annotations

from outpost.change_feed import ChangeFeed
from services.registry import metrics
from services.registry.domain.access_keys import AccessKeyEvent, AccessKeyEventKind
from services.registry.domain.collectors import CollectorEvent, EventKind


class WatchHub(ChangeFeed[CollectorEvent]):
    """The registry's change feed: `notify` after each commit, `watch` per stream."""

    task_name = "registry-watch-poller"
    watchers = metrics.WATCHERS

    def bookmark(self, revision: int) -> CollectorEvent:
        return CollectorEvent(revision=revision, kind=EventKind.BOOKMARK)


class AccessKeyFeed(ChangeFeed[AccessKeyEvent]):
    """Access-key changes for gateways: `notify` after each create or revoke."""

    task_name = "registry-access-key-poller"
    watchers = metrics.ACCESS_KEY_WATCHERS
    replay_from_start = True  # since 0: every key's current state, then the bookmark

    def bookmark(self, revision: int) -> AccessKeyEvent:
        return AccessKeyEvent(revision=revision, kind=AccessKeyEventKind.BOOKMARK)
