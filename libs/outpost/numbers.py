"""Whole numbers typed by people: ASCII digits only, with an optional leading minus.

Python's `int()` reads "1_0" as 10 and a fullwidth "3" (U+FF13) as 3, and `str.isdigit()` says
yes to "²"; click's INT type is `int()`. A setting, a port or a limit an operator typed
must mean exactly the digits on the screen, so every parse of user input goes through
`parse_ascii_int` (and `is_ascii_digits` where a digit check decides a branch).
"""

from __future__ import annotations

import re

_INTEGER = re.compile(r"-?[0-9]+")


def is_ascii_digits(text: str) -> bool:
    """True for "0".."9" only, at least one: no sign, no "_", no other script's digits."""
    return text.isascii() and text.isdigit()


def parse_ascii_int(text: str, what: str = "value") -> int:
    """`text` (surrounding spaces allowed) as an int; ValueError naming `what` otherwise."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped) or not stripped.isascii():
        shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}… ({len(text)} characters)"
        raise ValueError(f"{what} must be a whole number in ASCII digits (like 10), not {shown}")
    return int(stripped)
