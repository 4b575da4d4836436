"""Server settings that collectors and gateways follow.

`collector_check_minutes` (Open-Audit's name, which operators know) is how often an
HTTP-polling collector checks in; it also sets how late a scheduled run may be picked up
before it counts as missed (`domain.dispatch.missed_threshold`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from outpost import errors

DEFAULT_COLLECTOR_CHECK_MINUTES = 5
COLLECTOR_CHECK_RANGE = (1, 1440)


@dataclass(frozen=True)
class Settings:
    collector_check_minutes: int = DEFAULT_COLLECTOR_CHECK_MINUTES

    def as_values(self) -> dict[str, str]:
        """Stored as text in the key/value table."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Settings:
        """Stored values over the defaults; a key this version does not know is ignored."""
        settings = cls()
        if "collector_check_minutes" in values:
            settings = replace(settings, collector_check_minutes=int(values["collector_check_minutes"]))
        return settings


KNOWN_FIELDS = tuple(f.name for f in fields(Settings))


def apply_changes(current: Settings, requested: Settings, field_names: Iterable[str]) -> Settings:
    """`current` with the fields named in the mask taken from `requested`, validated."""
    names = [name.strip() for name in field_names if name.strip()]
    if not names:
        raise errors.InvalidArgument(f"name the settings to change in `fields`, e.g. {', '.join(KNOWN_FIELDS)}")
    unknown = [name for name in names if name not in KNOWN_FIELDS]
    if unknown:
        raise errors.InvalidArgument(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(KNOWN_FIELDS)}")
    changed = replace(current, **{name: getattr(requested, name) for name in names})
    low, high = COLLECTOR_CHECK_RANGE
    if not low <= changed.collector_check_minutes <= high:
        raise errors.InvalidArgument(
            f"collector_check_minutes must be between {low} and {high}, got {changed.collector_check_minutes}"
        )
    return changed
