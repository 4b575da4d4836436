"""How often polling collectors check in: the scheduler's stored `collector_check_minutes`.

The scheduler owns the setting; a gateway holds a copy, read with `GetSettings` when its
dispatch watch opens and again after every gap in that watch (a reconnect, or a scheduler
whose history went back), then kept current by the watch's settings events. Until the
first read the copy is the documented default (5 minutes, docs/scheduling.md) and says so
(`source == "default"`): the gateway does not accept collectors before that read, so no
session is told a value that was never stored.

`seconds_per_minute` is 60 in production. Tests shorten it (`--check-minute-seconds`, a
documented test-only knob) so that a check interval of "2 minutes" passes in 2 seconds;
everything derived from the interval (the poll cadence, the heartbeat interval told to a
polling collector, its session expiry, the check-in interval reported to the registry)
scales with it, and only the minutes are shown to people and sent as the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_COLLECTOR_CHECK_MINUTES = 5
"""The scheduler's default (docs/scheduling.md): used only until the first read succeeds."""
SECONDS_PER_MINUTE = 60


@dataclass
class CheckInterval:
    """This gateway's copy of `collector_check_minutes`, and where it came from."""

    seconds_per_minute: int = SECONDS_PER_MINUTE
    minutes: int = DEFAULT_COLLECTOR_CHECK_MINUTES
    source: str = "default"
    """"default" until the scheduler was read, then "scheduler"."""

    @property
    def seconds(self) -> int:
        """The interval in seconds: what a polling collector is told to wait between polls."""
        return max(1, self.minutes) * self.seconds_per_minute

    @property
    def read(self) -> bool:
        return self.source != "default"

    def update(self, minutes: int) -> bool:
        """Take a value the scheduler stores; True when it differs from the one held.

        0 (a scheduler that sends no value) keeps what is held: it is not a setting.
        """
        if minutes <= 0:
            return False
        changed = minutes != self.minutes
        self.minutes = minutes
        self.source = "scheduler"
        return changed
