"""nmap's PCRE patterns for Python's `re`: the rewriting, and the literal prefix that filters them.

nmap uses PCRE; Python's `re` takes most of it (Python 3.11 has atomic
groups and possessive quantifiers). `python_regex` rewrites what it does not take:
`\\z` -> `\\Z`, PCRE `\\Z` -> `(?=\\n?\\Z)`, `\\h` -> `[ \\t]`, `\\e` -> `\\x1b`, `\\xH` and
`\\x{HH}` -> `\\xHH`, `\\cX` -> the control byte, `\\Q...\\E` -> escaped text, POSIX
classes `[:alpha:]` inside sets, `(?<name>`/`(?'name'` -> `(?P<name>`, `\\k<name>` ->
`(?P=name)`, a `{` that is not a quantifier (PCRE takes `{,n}` literally), and `[`, `&`,
`~`, `|` and `--` inside sets are escaped (Python warns on them as future set operations).
Skipped — the pattern is counted as not compiled and never matches: recursion (`(?R)`,
`(?1)`), `\\p{...}` properties, `\\K`, `\\G`, `\\R`, `\\X`, inline flags in the middle of
a pattern (`^(?i)` is moved to the front), and anything else `re` refuses.
`service_probes.ProbeDatabase.check_patterns()` counts them.

`literal_prefix` finds the bytes every match of an anchored pattern starts with, so a
pattern can be ruled out (and left uncompiled) by comparing bytes.
"""

from __future__ import annotations

import re


class UnsupportedRegex(ValueError):
    """A PCRE construct Python's `re` has no equivalent for."""


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
    "cntrl": r"\x00-\x1f\x7f",
    "word": r"\w",
}
_UNSUPPORTED_ESCAPES = set("pPKGRXCNgE")
_HEX = set("0123456789abcdefABCDEF")


def python_regex(pattern: str) -> str:
    """A PCRE pattern (as nmap writes them) rewritten for Python's `re` (see the module doc)."""
    leading_flags = _LEADING_FLAGS.match(pattern)
    if leading_flags:  # "^(?i)abc": Python takes global flags only at the very start
        pattern = leading_flags.group(1) + "^" + pattern[leading_flags.end() :]
    out: list[str] = []
    position = 0
    in_set = False
    set_start = 0
    length = len(pattern)
    while position < length:
        char = pattern[position]
        if char == "\\":
            if position + 1 >= length:
                raise UnsupportedRegex("pattern ends with a backslash")
            code = pattern[position + 1]
            escaped, position = _escape(pattern, position, code, in_set)
            out.append(escaped)
            continue
        if in_set:
            if char == "]" and position > set_start:
                in_set = False
                out.append("]")
            elif char == "[" and pattern.startswith("[:", position):
                end = pattern.find(":]", position + 2)
                name = pattern[position + 2 : end] if end > 0 else ""
                negated = name.startswith("^")
                if name.lstrip("^") not in _POSIX_CLASSES or negated:
                    raise UnsupportedRegex(f"POSIX class [:{name}:]")
                out.append(_POSIX_CLASSES[name])
                position = end + 2
                continue
            elif char in "[&~|" or (char == "-" and pattern.startswith("--", position)):
                out.append("\\" + char)
            else:
                out.append(char)
            position += 1
            continue
        if char == "[":
            in_set = True
            out.append("[")
            position += 1
            if position < length and pattern[position] == "^":
                out.append("^")
                position += 1
            set_start = position  # a "]" right here is a literal, in PCRE as in Python
            if position < length and pattern[position] == "]":
                out.append("\\]")
                position += 1
            continue
        if char == "(" and pattern.startswith("(?", position):
            out.append(_group_opening(pattern, position))
            position += len(_GROUP_OPENING.match(pattern, position).group(0))  # type: ignore[union-attr]
            continue
        if char == "{" and not _QUANTIFIER.match(pattern, position):
            out.append("\\{")
        elif char == "}" and not _closes_quantifier(pattern, position):
            out.append("\\}")
        else:
            out.append(char)
        position += 1
    if in_set:
        raise UnsupportedRegex("unterminated character set")
    return "".join(out)


_LEADING_FLAGS = re.compile(r"\^(\(\?[imsx]+\))")
_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")
_GROUP_OPENING = re.compile(r"\(\?(?:<(?![=!])[A-Za-z_]\w*>|'[A-Za-z_]\w*'|P?<[=!]?|[^)]?)")


def _closes_quantifier(pattern: str, position: int) -> bool:
    start = pattern.rfind("{", 0, position)
    return start >= 0 and _QUANTIFIER.fullmatch(pattern, start, position + 1) is not None


def _group_opening(pattern: str, position: int) -> str:
    opening = _GROUP_OPENING.match(pattern, position)
    assert opening is not None
    text = opening.group(0)
    if text.startswith("(?<") and text.endswith(">") and text[3] not in "=!":
        return "(?P<" + text[3:]
    if text.startswith("(?'"):
        return "(?P<" + text[3:-1] + ">"
    if text in ("(?R", "(?&", "(?+", "(?-") or (len(text) == 3 and text[2].isdigit()):
        raise UnsupportedRegex("recursion or subroutine call")
    if position > 0 and re.match(r"\(\?[imsx-]+\)", pattern[position:]):
        raise UnsupportedRegex("inline flags in the middle of the pattern")
    return text


def _escape(pattern: str, position: int, code: str, in_set: bool) -> tuple[str, int]:
    """One backslash escape at `position`: (its Python spelling, the position after it)."""
    after = position + 2
    if code == "x":
        if pattern.startswith("{", after):
            end = pattern.index("}", after)
            value = int(pattern[after + 1 : end], 16)
            if value > 0xFF:
                raise UnsupportedRegex(f"\\x{{{value:x}}} is beyond a byte")
            return f"\\x{value:02x}", end + 1
        digits = ""
        while len(digits) < 2 and after + len(digits) < len(pattern) and pattern[after + len(digits)] in _HEX:
            digits += pattern[after + len(digits)]
        return f"\\x{int(digits or '0', 16):02x}", after + len(digits)
    if code == "z":
        return "\\Z", after
    if code == "Z":
        if in_set:
            raise UnsupportedRegex("\\Z in a character set")
        return "(?=\\n?\\Z)", after
    if code == "h":
        return (r" \t" if in_set else r"[ \t]"), after
    if code == "H":
        if in_set:
            raise UnsupportedRegex("\\H in a character set")
        return r"[^ \t]", after
    if code == "e":
        return r"\x1b", after
    if code == "c" and after < len(pattern):
        return f"\\x{ord(pattern[after].upper()) ^ 0x40:02x}", after + 1
    if code == "Q":
        end = pattern.find("\\E", after)
        end = len(pattern) if end < 0 else end
        return re.escape(pattern[after:end]), min(end + 2, len(pattern))
    if code == "k" and pattern.startswith("<", after):
        end = pattern.index(">", after)
        return f"(?P={pattern[after + 1 : end]})", end + 1
    if code in _UNSUPPORTED_ESCAPES:
        raise UnsupportedRegex(f"\\{code} has no Python equivalent")
    return "\\" + code, after


def literal_prefix(pattern: str) -> bytes:
    """The bytes every match must start with, for a pattern anchored with `^` (else b"").

    Conservative: it stops at the first construct it does not understand, drops a literal
    that a quantifier makes optional, and gives up on a pattern with a top-level `|`.
    """
    if not pattern.startswith("^") or _has_top_level_alternation(pattern):
        return b""
    out = bytearray()
    position = 1
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern):
            code = pattern[position + 1]
            if code == "x":
                digits = pattern[position + 2 : position + 4]
                if len(digits) < 2 or not set(digits) <= _HEX:
                    break
                literal, step = int(digits, 16), 4
            elif code == "0" and not pattern[position + 2 : position + 3].isdigit():
                literal, step = 0, 2
            elif code in "rnt":
                literal, step = {"r": 13, "n": 10, "t": 9}[code], 2
            elif not code.isalnum() and ord(code) < 128:
                literal, step = ord(code), 2
            else:
                break
        elif char in "\\^$.|?*+()[]{}" or ord(char) > 0xFF:
            break
        else:
            literal, step = ord(char), 1
        following = pattern[position + step : position + step + 1]
        if following in ("?", "*", "{"):
            break
        out.append(literal)
        position += step
        if following == "+":
            break
    return bytes(out)


def _has_top_level_alternation(pattern: str) -> bool:
    depth = 0
    in_set = False
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            position += 2
            continue
        if in_set:
            in_set = char != "]"
        elif char == "[":
            in_set = True
            if pattern[position + 1 : position + 2] == "^":
                position += 1
            if pattern[position + 1 : position + 2] == "]":
                position += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        position += 1
    return False
