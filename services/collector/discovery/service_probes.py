"""nmap's service fingerprints (`nmap-service-probes`): parse the file, match a server's bytes.

Theory of operation
-------------------
The file (https://nmap.org/book/vscan-fileformat.html) is a list of *probes*: bytes to
send (`Probe TCP GetRequest q|GET / HTTP/1.0\\r\\n\\r\\n|`; the `NULL` probe sends nothing
and waits for a greeting) with the ports they suit (`ports`, `sslports`), how rare a
useful answer is (`rarity` 1-9, compared with an *intensity* as nmap's
`--version-intensity`), which other probes' patterns also apply to its answers
(`fallback`; every TCP probe also falls back to `NULL`), and `match`/`softmatch` lines: a
service name, a Perl-style regex `m|...|flags` and version templates
(`p/product/ v/version/ i/info/ h/host/ o/os/ d/device/ cpe:/.../`) with `$1`, `$P(1)`,
`$SUBST(1,"_",".")` and `$I(1,">")` substitutions.

`parse_service_probes` is a pure function of the text: no regex is compiled there. Each
`Match` compiles its pattern on first use (the file holds ~12,000; a run meets a few), and
most patterns start with a literal after `^`, so `Match.could_match` rules out most of a
probe's patterns by comparing that prefix before anything is compiled. `match_response`
walks a probe's patterns and then its fallbacks' as nmap does: the first hard `match`
wins; a `softmatch` only names the service and is kept while looking for a hard one.

Patterns are PCRE; `pcre.py` rewrites them for Python's `re` and says what it skips.
`ProbeDatabase.check_patterns()` counts the patterns Python cannot take; the collector
logs that count once at start, so no fingerprint is lost silently (nmap 7.93: all
~12,000 compile).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from services.collector.discovery.pcre import literal_prefix, python_regex

DEFAULT_INTENSITY = 7
DEFAULT_SERVICE_PROBES_FILE = "/usr/share/nmap/nmap-service-probes"  # Debian package nmap
DEFAULT_TOTAL_WAIT_MS = 5000  # nmap's default when a probe has no totalwaitms line
MAX_FIELD = 256

_TEMPLATE_FIELDS = {"p": "product", "v": "version", "i": "info", "h": "hostname", "o": "os", "d": "device"}


class ServiceProbesError(ValueError):
    """The file does not follow the nmap-service-probes grammar (with the line number)."""


@dataclass(frozen=True)
class Recognition:
    """What a matched pattern says about a service; version fields are "" when not given."""

    service: str
    soft: bool = False
    product: str = ""
    version: str = ""
    info: str = ""
    hostname: str = ""
    os: str = ""
    device: str = ""
    cpes: tuple[str, ...] = ()
    probe: str = ""


@dataclass(eq=False, slots=True)
class Match:
    """One `match`/`softmatch` line; the regex is compiled, the templates parsed, on first use.

    Lean on purpose (slots, the version templates kept as their text): a collector holds
    ~12,000 of these for its lifetime, and most are never used.
    """

    service: str
    pattern: str
    flags: str
    soft: bool
    version_info: str
    line: int
    prefix: bytes = field(default=b"", init=False, repr=False)
    _regex: re.Pattern[bytes] | None = field(default=None, init=False, repr=False)
    _compiled: bool = field(default=False, init=False, repr=False)
    error: str = field(default="", init=False)

    def __post_init__(self) -> None:
        prefix = literal_prefix(self.pattern)
        self.prefix = prefix.lower() if "i" in self.flags else prefix

    @property
    def templates(self) -> dict[str, str]:
        """{"product": "vsftpd", "version": "$1", ...} from `p/vsftpd/ v/$1/`."""
        return _version_templates(self.version_info)[0]

    @property
    def cpes(self) -> tuple[str, ...]:
        return _version_templates(self.version_info)[1]

    def could_match(self, data: bytes, lowered: bytes) -> bool:
        """False when the pattern's literal prefix rules `data` out (cheap: nothing compiled)."""
        if not self.prefix:
            return True
        return (lowered if "i" in self.flags else data).startswith(self.prefix)

    @property
    def regex(self) -> re.Pattern[bytes] | None:
        """The compiled pattern, or None if Python cannot take it (see `error`)."""
        if not self._compiled:
            self._regex, self.error = self.compile()
            self._compiled = True
        return self._regex

    def compile(self) -> tuple[re.Pattern[bytes] | None, str]:
        """Compile without keeping the result: (pattern, "") or (None, why not)."""
        try:
            flags = (re.IGNORECASE if "i" in self.flags else 0) | (re.DOTALL if "s" in self.flags else 0)
            return re.compile(python_regex(self.pattern).encode("latin-1"), flags), ""
        except (re.error, ValueError, OverflowError, RecursionError) as exc:  # UnsupportedRegex, or a malformed escape
            return None, str(exc) or type(exc).__name__

    def recognise(self, data: bytes, probe: str = "") -> Recognition | None:
        regex = self.regex
        found = regex.search(data) if regex is not None else None
        if found is None:
            return None
        templates, cpes = _version_templates(self.version_info)
        values = {name: _fill(template, found) for name, template in templates.items()}
        return Recognition(
            service=self.service,
            soft=self.soft,
            product=values.get("product", ""),
            version=values.get("version", ""),
            info=values.get("info", ""),
            hostname=values.get("hostname", ""),
            os=values.get("os", ""),
            device=values.get("device", ""),
            cpes=tuple(filter(None, (_fill(cpe, found) for cpe in cpes))),
            probe=probe,
        )


@dataclass(eq=False)
class Probe:
    """One `Probe` section: what to send, where it suits, and the patterns for its answers."""

    protocol: str
    name: str
    payload: bytes
    line: int
    rarity: int = 1
    ports: frozenset[int] = frozenset()
    sslports: frozenset[int] = frozenset()
    fallbacks: tuple[str, ...] = ()
    total_wait_ms: int = DEFAULT_TOTAL_WAIT_MS
    tcpwrapped_ms: int = 0
    matches: list[Match] = field(default_factory=list)
    _index: dict[int, list[Match]] | None = field(default=None, init=False, repr=False)
    _unprefixed: list[Match] = field(default_factory=list, init=False, repr=False)

    def candidates(self, first: int) -> list[Match]:
        """The patterns (in file order) an answer starting with byte `first` could match.

        Those whose literal prefix starts with that byte (either case under `i`) and
        those without a prefix; indexed on first use, per probe.
        """
        if self._index is None:
            index: dict[int, list[Match]] = {}
            unprefixed: list[Match] = []
            for match in self.matches:
                if not match.prefix:
                    unprefixed.append(match)
                    for bucket in index.values():
                        bucket.append(match)
                    continue
                keys = {match.prefix[0]}
                if "i" in match.flags:
                    keys |= {bytes([match.prefix[0]]).upper()[0]}
                for key in keys:
                    index.setdefault(key, list(unprefixed)).append(match)
            self._index, self._unprefixed = index, unprefixed
        return self._index.get(first, self._unprefixed)

    def suits(self, port: int, *, tls: bool = False) -> bool:
        """The probe lists this port (its `sslports` when the port speaks TLS)."""
        return port in (self.sslports if tls else self.ports)


@dataclass(frozen=True)
class CompileReport:
    patterns: int
    failed: int
    first_failures: tuple[str, ...]


class ProbeDatabase:
    """The parsed file: probes by protocol and name, in file order."""

    def __init__(self, probes: Iterable[Probe], excluded_ports: frozenset[int] = frozenset(), source: str = "") -> None:
        self.probes = tuple(probes)
        self.excluded_ports = excluded_ports
        self.source = source
        self._by_name = {(probe.protocol, probe.name): probe for probe in self.probes}

    def probe(self, name: str, protocol: str = "TCP") -> Probe | None:
        return self._by_name.get((protocol, name))

    @property
    def pattern_count(self) -> int:
        return sum(len(probe.matches) for probe in self.probes)

    def tcp_sequence(self, port: int, intensity: int = DEFAULT_INTENSITY, *, tls: bool = False) -> list[Probe]:
        """TCP request probes for a port in nmap's order, NULL left out.

        As nmap's `ServiceNFO::nextProbe`: first the probes that list the port (whatever
        their rarity), in file order, then the others whose rarity is within `intensity`.
        """
        candidates = [p for p in self.probes if p.protocol == "TCP" and p.name != "NULL"]
        listed = [p for p in candidates if p.suits(port, tls=tls)]
        others = [p for p in candidates if not p.suits(port, tls=tls) and p.rarity <= intensity]
        return listed + others

    def match_response(self, probe: Probe, data: bytes) -> Recognition | None:
        """The first hard match for `data` among the probe's patterns and its fallbacks'.

        Failing a hard match, the first softmatch; None when nothing matches.
        """
        if not data:
            return None
        lowered = data.lower()
        soft: Recognition | None = None
        for source in self._with_fallbacks(probe):
            for match in source.candidates(data[0]):
                if soft is not None and match.soft:
                    continue
                if not match.could_match(data, lowered):
                    continue
                found = match.recognise(data, probe.name)
                if found is None:
                    continue
                if not found.soft:
                    return found
                soft = found
        return soft

    def _with_fallbacks(self, probe: Probe) -> Iterator[Probe]:
        yield probe
        for name in probe.fallbacks:
            fallback = self.probe(name, probe.protocol)
            if fallback is not None and fallback is not probe:
                yield fallback
        null = self.probe("NULL", probe.protocol)
        if probe.protocol == "TCP" and null is not None and null is not probe and "NULL" not in probe.fallbacks:
            yield null

    def check_patterns(self, keep: int = 5) -> CompileReport:
        """Compile every pattern once and throw it away: how many Python cannot take, and why.

        The lazily compiled patterns are left alone (memory stays as small as what a run
        uses); `re`'s own cache is purged after, for the same reason. About 1.2 s of CPU
        for nmap 7.93's ~12,000 patterns: the collector runs it once, in a thread.
        """
        failed: list[str] = []
        for probe in self.probes:
            for match in probe.matches:
                regex, error = match.compile()
                if regex is None:
                    failed.append(f"line {match.line} ({match.service}): {error}")
        re.purge()
        return CompileReport(self.pattern_count, len(failed), tuple(failed[:keep]))


# --- the file ---------------------------------------------------------------------------


def parse_service_probes(text: str | Iterable[str], source: str = "") -> ProbeDatabase:
    """The probes of an nmap-service-probes text or its lines (decoded as latin-1: the file is bytes)."""
    probes: list[Probe] = []
    excluded: set[int] = set()
    current: Probe | None = None
    lines = text.splitlines() if isinstance(text, str) else text
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        directive, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            if directive == "Exclude":
                excluded |= {p for spec in rest.split(",") if spec.strip()[:2] not in ("U:",) for p in _ports(spec)}
                continue
            if directive == "Probe":
                current = _probe(rest, number)
                probes.append(current)
                continue
            if current is None:
                raise ServiceProbesError(f"{directive!r} before the first Probe")
            if directive in ("match", "softmatch"):
                current.matches.append(_match(rest, number, soft=directive == "softmatch"))
            elif directive == "ports":
                current.ports = frozenset(_ports(rest))
            elif directive == "sslports":
                current.sslports = frozenset(_ports(rest))
            elif directive == "rarity":
                current.rarity = int(rest)
            elif directive == "fallback":
                current.fallbacks = tuple(name.strip() for name in rest.split(",") if name.strip())
            elif directive == "totalwaitms":
                current.total_wait_ms = int(rest)
            elif directive == "tcpwrappedms":
                current.tcpwrapped_ms = int(rest)
            else:
                raise ServiceProbesError(f"unknown directive {directive!r}")
        except (ValueError, IndexError) as exc:
            where = f"{source or 'nmap-service-probes'} line {number}"
            raise ServiceProbesError(f"{where}: {exc}") from None
    return ProbeDatabase(probes, frozenset(excluded), source)


def load_service_probes(path: str) -> ProbeDatabase:
    """Read and parse a file; OSError if unreadable, ServiceProbesError if malformed."""
    with open(path, encoding="latin-1", newline="") as handle:  # line by line: no 2.5 MB copy held
        return parse_service_probes(handle, path)


def _probe(rest: str, line: int) -> Probe:
    protocol, _, rest = rest.partition(" ")
    name, _, rest = rest.strip().partition(" ")
    rest = rest.strip()
    if protocol not in ("TCP", "UDP") or not name or not rest.startswith("q") or len(rest) < 3:
        raise ServiceProbesError(f"malformed Probe line: {rest[:60]!r}")
    delimiter = rest[1]
    end = rest.index(delimiter, 2)
    return Probe(protocol=protocol, name=name, payload=unescape_payload(rest[2:end]), line=line)


def _match(rest: str, line: int, *, soft: bool) -> Match:
    service, _, rest = rest.partition(" ")
    rest = rest.strip()
    if not service or not rest.startswith("m") or len(rest) < 3:
        raise ServiceProbesError(f"malformed match line for {service!r}")
    delimiter = rest[1]
    end = rest.index(delimiter, 2)
    pattern = rest[2:end]
    position = end + 1
    flags = ""
    while position < len(rest) and rest[position] in "is":
        flags += rest[position]
        position += 1
    version_info = rest[position:].strip()
    _version_templates(version_info)  # refuse a malformed line now, not when it first matches
    return Match(
        service=sys.intern(service),
        pattern=pattern,
        flags=sys.intern(flags),
        soft=soft,
        version_info=version_info,
        line=line,
    )


def _version_templates(text: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """`p/x/ v/$1/ cpe:/a:b:c/a` -> ({"product": "x", "version": "$1"}, ("cpe:/a:b:c",))."""
    templates: dict[str, str] = {}
    cpes: list[str] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        if text.startswith("cpe:", position):
            delimiter = text[position + 4]
            end = text.index(delimiter, position + 5)
            cpes.append("cpe:/" + text[position + 5 : end])
            position = end + 1
            if position < len(text) and text[position] == "a":  # "a": the CPE names the application
                position += 1
            continue
        key = text[position]
        if key not in _TEMPLATE_FIELDS or position + 1 >= len(text):
            raise ServiceProbesError(f"unknown version field at {text[position : position + 20]!r}")
        delimiter = text[position + 1]
        end = text.index(delimiter, position + 2)
        templates[_TEMPLATE_FIELDS[key]] = text[position + 2 : end]
        position = end + 1
    return templates, tuple(cpes)


def _ports(text: str) -> Iterator[int]:
    for item in text.split(","):
        spec = item.strip().removeprefix("T:").removeprefix("U:")
        if not spec:
            continue
        low, dash, high = spec.partition("-")
        first = int(low)
        last = int(high) if dash else first
        if not 0 <= first <= last <= 65535:
            raise ValueError(f"port range {spec!r} is outside 0-65535")
        yield from range(first, last + 1)


_PAYLOAD_ESCAPES = {"0": 0, "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def unescape_payload(text: str) -> bytes:
    """A probe string's C-style escapes (`\\r`, `\\0`, `\\xHH`) as bytes."""
    out = bytearray()
    position = 0
    while position < len(text):
        char = text[position]
        if char != "\\" or position + 1 >= len(text):
            out += char.encode("latin-1")
            position += 1
            continue
        code = text[position + 1]
        if code == "x":
            out.append(int(text[position + 2 : position + 4], 16))
            position += 4
        elif code in _PAYLOAD_ESCAPES:
            out.append(_PAYLOAD_ESCAPES[code])
            position += 2
        else:
            out += code.encode("latin-1")
            position += 2
    return bytes(out)


# --- version templates --------------------------------------------------------------------

_SUBSTITUTION = re.compile(r'\$(?:(\d)|P\((\d)\)|SUBST\((\d),"([^"]*)","([^"]*)"\)|I\((\d),"([<>])"\))')


def _fill(template: str, found: re.Match[bytes]) -> str:
    """A version template with the match's groups put in, printable and bounded."""

    def group(number: str) -> bytes:
        index = int(number)
        if index > (found.re.groups or 0):
            return b""
        return found.group(index) or b""

    def substitute(m: re.Match[str]) -> str:
        plain, printable, subst, old, new, integer, endian = m.groups()
        if plain:
            return group(plain).decode("latin-1")
        if printable:
            return bytes(b for b in group(printable) if 0x20 <= b < 0x7F).decode("ascii")
        if subst:
            return group(subst).decode("latin-1").replace(old, new)
        raw = group(integer)
        return str(int.from_bytes(raw, "big" if endian == ">" else "little")) if raw else ""

    text = _SUBSTITUTION.sub(substitute, template)
    return "".join(char if char.isprintable() else " " for char in text).strip()[:MAX_FIELD]
