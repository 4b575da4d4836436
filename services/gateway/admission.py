"""Who may start a handshake: bounds on unauthenticated connections and failed-auth rate.

Unauthenticated connections cost memory and a registry call each, so the gateway caps
how many are in the handshake at once, and a remote address whose handshakes keep
failing is refused for a while (a fixed window per address, bounded in size).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

MAX_TRACKED_ADDRESSES = 10_000


@dataclass
class Admission:
    max_unauthenticated: int = 1000
    max_failures: int = 10
    failure_window: float = 60.0
    unauthenticated: int = 0
    _failures: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    def try_begin(self) -> bool:
        if self.unauthenticated >= self.max_unauthenticated:
            return False
        self.unauthenticated += 1
        return True

    def end(self) -> None:
        self.unauthenticated -= 1

    def blocked(self, host: str, now: float) -> bool:
        entry = self._failures.get(host)
        return entry is not None and now - entry[0] < self.failure_window and entry[1] >= self.max_failures

    def record_failure(self, host: str, now: float) -> None:
        started, count = self._failures.pop(host, (now, 0))
        if now - started >= self.failure_window:
            started, count = now, 0
        self._failures[host] = (started, count + 1)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)
