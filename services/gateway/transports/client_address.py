"""The collector's address as every transport reports it: the peer, or what a trusted proxy says.

Enrollment tokens' `--cidr` bounds, the pre-authentication limits (per address), the
registry's per-network pending limits, audit and logs all use a session's
`remote_address`. Behind a load balancer the TCP peer is the balancer, so the gateway
learns the collector's address from the balancer instead (ADR 0026) — but only from the
addresses an operator listed in `--trusted-proxies`; from anyone else the claim is
ignored (HTTP headers) or refused (a PROXY protocol header), because a collector that
could name its own address could step around every bound above.

- Raw TCP (`--tcp-proxy-protocol`): the PROXY protocol header, v1 or v2, read in
  `transports/tcp.py` with the parser in `transports/proxy_protocol.py`.
- WebSocket and HTTP polling (aiohttp), and the gRPC agent stream: `Forwarded`
  (RFC 7239) or else `X-Forwarded-For`, from a trusted peer only, read right to left: the
  first hop that is not a trusted proxy is the client (`forwarded_client`). Hops left of
  it were written by the client and are never believed.

Addresses are formatted once here (`format_address`): "203.0.113.7:5000",
"[2001:db8::7]:5000"; a hop from a header carries no port ("203.0.113.7",
"[2001:db8::7]"). `admission.host_of` and the registry's `remote_ip` read all of these.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IPAddress | None:
    """An address from a peer name or a header hop ("[v6]", "v6%zone", "v4:port" too); None if not one."""
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose connections may name the client: load balancers, ingress controllers."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """ "10.0.0.0/8, 192.0.2.5" -> TrustedProxies; ValueError naming the bad entry."""
        networks: list[IPNetwork] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=True))
            except ValueError as exc:
                raise ValueError(f"--trusted-proxies: {item!r} is not an address or CIDR ({exc})") from None
        return cls(tuple(networks))

    def trusts(self, host: str) -> bool:
        address = parse_ip(host)
        return address is not None and any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)


def format_address(host: str, port: int | None = None) -> str:
    """ "203.0.113.7", 5000 -> "203.0.113.7:5000"; IPv6 in brackets; no port for a header hop."""
    address = parse_ip(host)
    shown = host if address is None else str(address)
    if ":" in shown:
        shown = f"[{shown}]"
    return shown if port is None else f"{shown}:{port}"


def peer_address(peername: object) -> tuple[str, int] | None:
    """A socket's peername (IPv4 pair or IPv6 4-tuple) as (host, port); None if it has none."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        return str(peername[0]), int(peername[1])
    return None


def forwarded_client(
    peer: tuple[str, int] | None,
    trusted: TrustedProxies,
    *,
    forwarded: Iterable[str] = (),
    x_forwarded_for: Iterable[str] = (),
) -> str:
    """The client's address for a request from `peer` carrying these header values.

    From an untrusted peer (or with no trusted proxies) the headers are ignored: the
    peer is the client. From a trusted one, the hops (RFC 7239 `for=` if a `Forwarded`
    header is present, else `X-Forwarded-For`) are read right to left, skipping trusted
    proxies; the first other hop is the client. A hop that is not an address ("unknown",
    an obfuscated name, garbage) ends the walk at the last trusted hop: the proxy's own
    address is reported, never a guess. All hops trusted: the leftmost one.
    """
    if peer is None:
        return "unknown"
    if not trusted.trusts(peer[0]):
        return format_address(*peer)
    forwarded = list(forwarded)
    hops = _forwarded_for(forwarded) if forwarded else _x_forwarded_for(x_forwarded_for)
    client = format_address(*peer)
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            return client
        client = format_address(str(address))
        if not trusted.trusts(str(address)):
            return client
    return client


def _x_forwarded_for(values: Iterable[str]) -> list[str]:
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]


def _forwarded_for(values: Iterable[str]) -> list[str]:
    """The `for=` of each element of RFC 7239 `Forwarded` headers, in order ("" when absent)."""
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            found = ""
            for pair in element.split(";"):
                name, _, text = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    found = text.strip().strip('"')
            hops.append(found)
    return hops
