"""DNS lookups of a run: PTR names of live hosts (the `dns` probe), and target host names.

Both ask the job's resolver (`DiscoveryPlan.dns_resolver`, "host:port") when one is given,
with dnspython: the collector's own resolver often does not know the scanned network's
zones. Without one, PTR lookups use dnspython configured from /etc/resolv.conf and
target names use the system's getaddrinfo (which also reads /etc/hosts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.reversename

from outpost.targets import IPAddress


def make_resolver(server: tuple[str, int] | None, timeout: float) -> dns.asyncresolver.Resolver:
    if server is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [server[0]]
        resolver.port = server[1]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


async def reverse_lookup(resolver: dns.asyncresolver.Resolver, ip: str) -> str:
    """The PTR name of `ip` without the trailing dot; "" when the resolver says there is none.

    "" is a measurement (NXDOMAIN, or the name exists without a PTR record): the inventory
    records that the old name is gone. A resolver that does not answer in time raises
    dns.exception.Timeout (its LifetimeTimeout), and one that fails (SERVFAIL, REFUSED)
    dns.resolver.NoNameservers: nothing was learned, and the caller notes why.
    """
    try:
        answer = await resolver.resolve(dns.reversename.from_address(ip), "PTR")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ""
    for record in answer:
        return str(record.target).rstrip(".")
    return ""


async def forward_lookup(
    name: str, resolver: dns.asyncresolver.Resolver | None, timeout: float
) -> tuple[IPAddress, ...]:
    """The addresses of a target host name; () when it does not resolve."""
    if resolver is not None:
        addresses: list[IPAddress] = []
        for record_type in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(name, record_type)
            except dns.exception.DNSException:
                continue
            addresses.extend(ipaddress.ip_address(str(record)) for record in answer)
        return tuple(addresses)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return ()
    return tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
