"""The spool's bounds as an operator writes them: `256MiB`, `1GB`, `7d`, `12h`, or plain numbers.

Sizes: a number of bytes, or a number with a unit, case-insensitive, with or without a
space: decimal `kB MB GB TB` (powers of 1000) and binary `KiB MiB GiB TiB` (powers of
1024); `B` alone means bytes. Durations: seconds, or a number with `s m h d w`. Both
raise ValueError with a message that says what is accepted.
"""

from __future__ import annotations

import re

SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")  # ASCII digits only


def parse_byte_size(text: str) -> int:
    """`256MiB` -> 268435456; ValueError for anything else than a positive size."""
    number, unit = _split(text, SIZE_UNITS, "a size such as 268435456, 256MiB or 1GB")
    value = int(number * SIZE_UNITS[unit])
    if value <= 0:
        raise ValueError(f"{text!r} must be more than 0 bytes")
    return value


def parse_duration(text: str) -> float:
    """`7d` -> 604800.0; ValueError for anything else than a positive duration."""
    number, unit = _split(text, DURATION_UNITS, "seconds, or a duration such as 90m, 12h or 7d")
    value = number * DURATION_UNITS[unit]
    if value <= 0:
        raise ValueError(f"{text!r} must be more than 0 seconds")
    return value


def _split(text: str, units: dict[str, int], expected: str) -> tuple[float, str]:
    match = _QUANTITY.fullmatch(text)
    if match is None or match.group(2).lower() not in units:
        raise ValueError(f"{text!r} is not {expected}")
    return float(match.group(1)), match.group(2).lower()
