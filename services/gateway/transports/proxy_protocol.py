"""A strict, incremental parser of the PROXY protocol header (HAProxy spec, v1 and v2).

A load balancer that speaks the PROXY protocol sends one header before the client's first
byte, naming the client's address; the gateway reads it on listeners where an operator
turned it on (ADR 0026). The parser does no I/O: `bytes_wanted()` says how many bytes to
read next without reading past the header (the bytes after it are the collector's, and
with TLS they belong to the TLS layer, so over-reading would lose them), `feed()` takes
them and returns the header once it is complete.

Strict by design: the header comes only from proxies the operator trusts, so anything
that is not exactly the spec (a bad signature, an unknown version or command, a v1 line
over 107 bytes or without CRLF, an address that does not parse for its family, a port out
of range or with a leading zero, a v2 address block shorter than its family needs, TLVs
that do not fill the block exactly, a v2 header over `max_bytes`) is a
`ProxyHeaderError`, and the caller closes the connection.

What the header yields is the client's source address, or None where the spec says to
use the connection's own endpoints: v1 `UNKNOWN`, v2 `LOCAL` (a proxy's health check),
v2 `UNSPEC` and `AF_UNIX` families.

Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_BYTES = 107
"""The longest v1 line the spec allows, CRLF included."""
V1_MIN_BYTES = len(b"PROXY UNKNOWN\r\n")
V2_FIXED_BYTES = 16
DEFAULT_MAX_HEADER_BYTES = 4096
"""A v2 header's bound here (the spec allows 64 KiB): addresses plus the TLVs load
balancers add (AWS's VPC endpoint id, GCP's connection id) fit many times over."""

_V2_LOCAL, _V2_PROXY = 0x0, 0x1
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM = 0x1
_ADDRESS_BYTES = {_AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY protocol header; the message says what is wrong."""


@dataclass(frozen=True)
class ProxyHeader:
    version: int
    source: tuple[str, int] | None
    """The client's (host, port); None: use the connection's own address (LOCAL, UNKNOWN...)."""
    destination: tuple[str, int] | None = None


def could_be_proxy_header(head: bytes) -> bool:
    """Whether `head` (the first bytes of a connection, at least one) starts like a PROXY header.

    A collector's first byte on the TCP port is 0x00 (a frame length under 16 MiB) or 0x16
    (a TLS ClientHello): neither signature starts that way, so one byte tells them apart.
    """
    if not head:
        return False
    return V1_SIGNATURE.startswith(head[:6]) or V2_SIGNATURE.startswith(head[:12])


class ProxyHeaderParser:
    """Feed bytes as `bytes_wanted()` asks; `feed` returns the header when it is complete."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> None:
        self.max_bytes = max(max_bytes, V2_FIXED_BYTES)
        self._buffer = bytearray()
        self._version = 0
        self._total = 0  # v2: the header's whole length, once the fixed part is in

    def bytes_wanted(self) -> int:
        """How many bytes to read next: never more than the header still has."""
        size = len(self._buffer)
        if self._version == 0:
            return len(V1_SIGNATURE) - size if size < len(V1_SIGNATURE) else V2_FIXED_BYTES - size
        if self._version == 1:
            if size < V1_MIN_BYTES:
                return V1_MIN_BYTES - size
            return 1 if self._buffer.endswith(b"\r") else 2
        return (self._total or V2_FIXED_BYTES) - size

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Take bytes (at most `bytes_wanted()`); the header once complete, else None."""
        if len(data) > self.bytes_wanted():
            raise ValueError("fed more bytes than bytes_wanted(): the rest belongs to the connection")
        self._buffer += data
        if self._version == 0:
            self._detect()
        if self._version == 1:
            return self._v1()
        if self._version == 2:
            return self._v2()
        return None

    def _detect(self) -> None:
        head = bytes(self._buffer)
        if not could_be_proxy_header(head):
            raise ProxyHeaderError("not a PROXY protocol header (no v1 or v2 signature)")
        if head.startswith(V1_SIGNATURE):
            self._version = 1
        elif head.startswith(V2_SIGNATURE):
            self._version = 2

    def _v1(self) -> ProxyHeader | None:
        line = bytes(self._buffer)
        cr = line.find(b"\r")
        if cr != -1 and cr + 1 < len(line) and line[cr + 1 : cr + 2] != b"\n":
            raise ProxyHeaderError("PROXY v1 line has a CR not followed by LF")
        if not line.endswith(b"\r\n"):
            if len(line) >= V1_MAX_BYTES:
                raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX_BYTES} bytes without CRLF")
            return None
        return parse_v1(line)

    def _v2(self) -> ProxyHeader | None:
        if len(self._buffer) < V2_FIXED_BYTES:
            return None
        if not self._total:
            length = int.from_bytes(self._buffer[14:16], "big")
            self._total = V2_FIXED_BYTES + length
            if self._total > self.max_bytes:
                raise ProxyHeaderError(f"PROXY v2 header of {self._total} bytes exceeds the limit of {self.max_bytes}")
            _check_v2_fixed(bytes(self._buffer[:V2_FIXED_BYTES]))
        if len(self._buffer) < self._total:
            return None
        return parse_v2(bytes(self._buffer))


def parse_v1(line: bytes) -> ProxyHeader:
    """One complete v1 line, CRLF included."""
    if len(line) > V1_MAX_BYTES:
        raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX_BYTES} bytes")
    if not line.startswith(V1_SIGNATURE) or not line.endswith(b"\r\n"):
        raise ProxyHeaderError("PROXY v1 line must start with 'PROXY ' and end with CRLF")
    try:
        text = line[:-2].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 line is not ASCII") from None
    parts = text.split(" ")
    protocol = parts[1] if len(parts) > 1 else ""
    if protocol == "UNKNOWN":
        return ProxyHeader(1, None)  # the spec: ignore the rest, use the connection's endpoints
    if protocol not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN, got {protocol!r}")
    if len(parts) != 6:
        raise ProxyHeaderError("PROXY v1 line needs exactly: PROXY <TCP4|TCP6> <src> <dst> <sport> <dport>")
    family = ipaddress.IPv4Address if protocol == "TCP4" else ipaddress.IPv6Address
    source, destination = _v1_address(family, parts[2]), _v1_address(family, parts[3])
    return ProxyHeader(1, (source, _v1_port(parts[4])), (destination, _v1_port(parts[5])))


def _v1_address(family: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address], text: str) -> str:
    try:
        return str(family(text))
    except ValueError:
        raise ProxyHeaderError(f"PROXY v1 address {text!r} is not an {family.__name__[:4]} address") from None


def _v1_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0"):
        raise ProxyHeaderError(f"PROXY v1 port {text!r} is not a decimal 0-65535 without leading zeros")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError(f"PROXY v1 port {text} is over 65535")
    return port


def _check_v2_fixed(fixed: bytes) -> None:
    version, command = fixed[12] >> 4, fixed[12] & 0x0F
    if version != 2:
        raise ProxyHeaderError(f"PROXY v2 header has version {version}, not 2")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProxyHeaderError(f"PROXY v2 command {command} is neither LOCAL (0) nor PROXY (1)")


def parse_v2(header: bytes) -> ProxyHeader:
    """One complete v2 header: the 16 fixed bytes and exactly the length they announce."""
    if len(header) < V2_FIXED_BYTES or not header.startswith(V2_SIGNATURE):
        raise ProxyHeaderError("PROXY v2 header must start with the 12-byte signature")
    _check_v2_fixed(header[:V2_FIXED_BYTES])
    length = int.from_bytes(header[14:16], "big")
    if len(header) != V2_FIXED_BYTES + length:
        raise ProxyHeaderError(f"PROXY v2 header announces {length} bytes after the fixed part, has {len(header) - 16}")
    if header[12] & 0x0F == _V2_LOCAL:
        return ProxyHeader(2, None)  # the proxy's own connection (a health check): the spec says ignore the block
    family, protocol = header[13] >> 4, header[13] & 0x0F
    block = header[V2_FIXED_BYTES:]
    if family == _AF_UNSPEC:
        return ProxyHeader(2, None)
    if family not in _ADDRESS_BYTES:
        raise ProxyHeaderError(f"PROXY v2 address family {family} is unknown")
    if protocol != _STREAM:
        raise ProxyHeaderError(f"PROXY v2 transport {protocol} on a TCP listener: only STREAM (1) is accepted")
    need = _ADDRESS_BYTES[family]
    if len(block) < need:
        raise ProxyHeaderError(f"PROXY v2 address block of {len(block)} bytes, the family needs {need}")
    _check_tlvs(block[need:])
    if family == _AF_UNIX:
        return ProxyHeader(2, None)
    width = 4 if family == _AF_INET else 16
    make = ipaddress.IPv4Address if family == _AF_INET else ipaddress.IPv6Address
    source = str(make(block[:width]))
    destination = str(make(block[width : 2 * width]))
    ports = block[2 * width : 2 * width + 4]
    return ProxyHeader(2, (source, int.from_bytes(ports[:2], "big")), (destination, int.from_bytes(ports[2:], "big")))


def _check_tlvs(data: bytes) -> None:
    """TLVs after the addresses must fill the block exactly (their contents are not used)."""
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise ProxyHeaderError("PROXY v2 TLV truncated (fewer than 3 bytes of type and length)")
        size = int.from_bytes(data[offset + 1 : offset + 3], "big")
        offset += 3 + size
        if offset > len(data):
            raise ProxyHeaderError("PROXY v2 TLV longer than the header")


def encode_v1(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v1 line (for tests and the test proxy): TCP4 or TCP6 by the source's family."""
    family = "TCP6" if ":" in source[0] else "TCP4"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode("ascii")


def encode_v2(source: tuple[str, int] | None, destination: tuple[str, int] | None = None, tlvs: bytes = b"") -> bytes:
    """A v2 header (for tests and the test proxy): PROXY with addresses, or LOCAL when `source` is None."""
    if source is None:
        return V2_SIGNATURE + bytes([0x20 | _V2_LOCAL, 0x00]) + len(tlvs).to_bytes(2, "big") + tlvs
    destination = destination or (("::" if ":" in source[0] else "0.0.0.0"), 0)
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    family = _AF_INET if src.version == 4 else _AF_INET6
    block = src.packed + dst.packed + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big") + tlvs
    return V2_SIGNATURE + bytes([0x20 | _V2_PROXY, (family << 4) | _STREAM]) + len(block).to_bytes(2, "big") + block
