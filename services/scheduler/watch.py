"""WatchDispatch: list-then-watch over the `dispatch_events` change log.

Every change of a job run (created, claimed, started, progressed, finished, cancelled,
requeued) and of the settings appends one row to `dispatch_events`; `outpost.change_feed`
explains how a watch follows that table (bookmarks, wake-ups, the cross-replica poller,
shutdown). Here it is bound to the scheduler's events.

An event carries the run's *current* state, read when the event is sent, not a copy
from when it was written: a gateway acts on what is true now. So within one page only
the newest event of each run (and of the settings) is sent; the older ones would say the
same thing. Revisions still only grow, and the newest of the page is always sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from outpost.change_feed import ChangeFeed
from services.scheduler import metrics
from services.scheduler.domain.dispatch import DispatchEvent, EventKind


class WatchHub(ChangeFeed[DispatchEvent]):
    """The scheduler's change feed: `notify` after each commit, `watch` per stream."""

    task_name = "scheduler-watch-poller"
    watchers = metrics.WATCHERS

    def page_filter(self, page: Sequence[DispatchEvent]) -> list[DispatchEvent]:
        return newest_per_subject(page)

    def bookmark(self, revision: int) -> DispatchEvent:
        return DispatchEvent(revision=revision, kind=EventKind.BOOKMARK)


def newest_per_subject(page: Sequence[DispatchEvent]) -> list[DispatchEvent]:
    """The page without events a later one in it supersedes (same run, or settings).

    Events carry current state, so an older event of the same subject says nothing the
    newer one does not. Events whose run is gone carry nothing and are dropped.
    """
    newest: dict[str, int] = {}
    for event in page:
        newest[_subject(event)] = event.revision
    return [
        event
        for event in page
        if newest[_subject(event)] == event.revision and (event.kind is not EventKind.JOB_RUN or event.job_run)
    ]


def _subject(event: DispatchEvent) -> str:
    if event.kind is EventKind.JOB_RUN:
        return f"run:{event.job_run.id if event.job_run else event.revision}"
    return event.kind.value
