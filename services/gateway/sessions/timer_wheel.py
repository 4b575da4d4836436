"""One timer for every session's deadline: coarse slots, not a timer or a waiting task per session.

Each session has one deadline at a time (the end of its handshake, then the moment its
collector has been silent too long), and it moves with every message heard. A session
that waited for its next item under `asyncio.timeout_at` paid for a task, a timeout
object and a cancelled timer handle per wait; 10,000 idle sessions paid that 10,000
times over (issue 13, item 2). Here a deadline is rounded *up* to the wheel's resolution
and its owner kept in that slot's set; one loop timer is armed for the earliest slot,
and when it fires every owner in the due slots is told, once. Moving a deadline is two
set operations. A deadline fires late by at most the resolution, never early: a
session's own clock decides what is due (`ServerSession.tick`), so an owner told early
only re-arms.

Single-threaded, like the event loop it runs on; owners must be hashable by identity.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Protocol

DEFAULT_RESOLUTION_SECONDS = 0.25


class DeadlineOwner(Protocol):
    def deadline_due(self) -> None:
        """Called from the loop once the owner's deadline passed; must not block."""


class TimerWheel:
    """Deadlines of many owners behind one `loop.call_at` handle."""

    def __init__(self, resolution: float = DEFAULT_RESOLUTION_SECONDS) -> None:
        if resolution <= 0:
            raise ValueError("the wheel's resolution must be positive")
        self._resolution = resolution
        self._slots: dict[int, set[DeadlineOwner]] = {}
        self._slot_of: dict[DeadlineOwner, int] = {}
        self._heap: list[int] = []  # slot numbers; may hold emptied or repeated ones (skipped)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        """Owners with a deadline armed."""
        return len(self._slot_of)

    def schedule(self, owner: DeadlineOwner, when: float | None) -> None:
        """Arm `owner` for loop time `when` (replacing its earlier deadline); None disarms."""
        self.cancel(owner)
        if when is None:
            return
        slot = math.ceil(when / self._resolution)
        members = self._slots.get(slot)
        if members is None:
            members = self._slots[slot] = set()
            heapq.heappush(self._heap, slot)
        members.add(owner)
        self._slot_of[owner] = slot
        if self._timer_slot is None or slot < self._timer_slot:
            self._arm(slot)

    def cancel(self, owner: DeadlineOwner) -> None:
        slot = self._slot_of.pop(owner, None)
        if slot is None:
            return
        members = self._slots.get(slot)
        if members is not None:
            members.discard(owner)
            if not members:
                del self._slots[slot]  # its heap entry is skipped when it comes up

    def close(self) -> None:
        """Forget every deadline (the gateway is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_slot = None
        self._slots.clear()
        self._slot_of.clear()
        self._heap.clear()

    def _arm(self, slot: int) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot * self._resolution, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._timer = self._timer_slot = None
        now = self._loop.time()
        due: list[DeadlineOwner] = []
        while self._heap and self._heap[0] * self._resolution <= now:
            members = self._slots.pop(heapq.heappop(self._heap), None)
            for owner in members or ():
                del self._slot_of[owner]
                due.append(owner)
        while self._heap and self._heap[0] not in self._slots:
            heapq.heappop(self._heap)  # emptied slots need no timer
        if self._heap:
            self._arm(self._heap[0])
        for owner in due:  # after the wheel is consistent: an owner may re-arm at once
            owner.deadline_due()
