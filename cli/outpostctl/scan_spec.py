"""Parsing what a discovery scans, as typed on the command line, and printing it back.

Each parser takes the option's values (an option may be repeated and each value may hold
a comma-separated list), and returns what the scheduler's `Discovery` holds, or raises
`ValueError` with a message naming the offending item. Checking here, not only on the
server, lets a typo fail before anything is sent, with the exact item pointed out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from outpost import targets
from outpost.errors import InvalidArgument
from outpost.numbers import is_ascii_digits

PROBES = ("icmp", "tcp", "dns", "banners", "snmp", "ssh")
MAX_PORT = 65535

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def split_list(values: Iterable[str]) -> list[str]:
    """ "a,b", "c" -> ["a", "b", "c"]: items stripped, empty ones and repeats dropped."""
    items = (item.strip() for value in values for item in value.split(","))
    return list(dict.fromkeys(item for item in items if item))


def parse_ports(values: Iterable[str]) -> list[int]:
    """ "22,80", "8000-8010" -> [22, 80, 8000, ..., 8010]: sorted, each once, 1..65535."""
    ports: set[int] = set()
    for item in split_list(values):
        low_text, dash, high_text = item.partition("-")
        low = _port_number(low_text, item)
        high = _port_number(high_text, item) if dash else low
        if high < low:
            raise ValueError(f"port range '{item}' runs backwards: write {high}-{low}")
        ports.update(range(low, high + 1))
    if not ports:
        raise ValueError("give at least one port, like 22,80,443 or 8000-8010")
    return sorted(ports)


def ports_text(ports: Sequence[int]) -> str:
    """[22, 80, 8000, ..., 8010] -> "22,80,8000-8010" (what `--ports` accepts)."""
    runs: list[list[int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def parse_targets(values: Iterable[str]) -> list[str]:
    """Addresses, CIDRs ("10.0.0.0/24"), ranges ("10.0.0.5-10.0.0.20", "10.0.0.5-20") and host names.

    The scheduler's and the collector's parser (`outpost.targets`), so what is accepted
    here runs there. Each comes back in its canonical form; a CIDR with host bits set is
    refused (the scan would not cover what it seems to), with the network it probably means.
    """
    parsed = []
    for item in split_list(values):
        try:
            parsed.append(targets.canonical_target(item))
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
    return list(dict.fromkeys(parsed))


def parse_probes(values: Iterable[str]) -> list[str]:
    """Probe names from `PROBES`, lowercased; none given -> [] (the server's defaults)."""
    probes = [item.lower() for item in split_list(values)]
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe '{unknown[0]}': choose from {', '.join(PROBES)}")
    return list(dict.fromkeys(probes))


def parse_resolver(value: str) -> str:
    """ "HOST:PORT" ("10.0.0.53:53", "[2001:db8::53]:53", "dns.lab:5353"), checked, as given."""
    text = value.strip()
    example = "HOST:PORT, like 10.0.0.53:53 or [2001:db8::53]:53"
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"'{value}' is not {example}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"'{host}' is not an IPv6 address in {example}") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 resolver in brackets: {example}")
    elif not _is_address(host) and not _is_host_name(host):
        raise ValueError(f"'{host}' is not an address or host name in {example}")
    _port_number(port_text, text)
    return text


def _port_number(text: str, item: str) -> int:
    text = text.strip()
    if not is_ascii_digits(text):
        raise ValueError(f"'{item}' is not a port or a port range (like 22 or 8000-8010)")
    number = int(text)
    if not 1 <= number <= MAX_PORT:
        raise ValueError(f"port {number} in '{item}' is outside 1-{MAX_PORT}")
    return number


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_host_name(text: str) -> bool:
    """RFC 1123 labels; all-numeric names are refused, since they are mistyped addresses."""
    labels = text.removesuffix(".").split(".")
    if len(text) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return False
    return not all(is_ascii_digits(label) for label in labels)
