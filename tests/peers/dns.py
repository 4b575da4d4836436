"""A DNS server (dnslib) on 127.0.0.1:<free port> for a small zone given as a dict.

`{"127.0.0.11": "web-1.lab.test."}` answers the PTR query for 127.0.0.11 and the A query
for web-1.lab.test. Names it does not know get NXDOMAIN. UDP only, in a daemon thread;
`set_names()` changes the zone between queries (a name that changes, then goes away);
`stop()` shuts it down.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import BaseResolver, DNSLogger, DNSServer  # type: ignore[import-untyped]


class _ZoneResolver(BaseResolver):
    def __init__(self, names: dict[str, str]) -> None:
        self.failing = False
        self.set_names(names)

    def set_names(self, names: dict[str, str]) -> None:
        # Each attribute is replaced whole, so a query in flight sees the old zone or the new.
        self.pointers = {ipaddress.ip_address(ip).reverse_pointer + ".": name for ip, name in names.items()}
        self.addresses = {name.lower(): ip for ip, name in names.items()}

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        question = str(request.q.qname)
        if self.failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif question in self.pointers:
            if request.q.qtype == QTYPE.PTR:
                reply.add_answer(RR(question, QTYPE.PTR, rdata=PTR(self.pointers[question]), ttl=60))
        elif question.lower() in self.addresses:
            address = self.addresses[question.lower()]
            if request.q.qtype == QTYPE.A and ipaddress.ip_address(address).version == 4:
                reply.add_answer(RR(question, QTYPE.A, rdata=A(address), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class DnsServer:
    host: str
    port: int
    names: dict[str, str]
    _server: Any = field(repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def set_names(self, names: dict[str, str]) -> None:
        """Serve this zone from now on; an IP left out gets NXDOMAIN."""
        self.names = dict(names)
        self._server.server.resolver.set_names(names)

    def fail(self, failing: bool = True) -> None:
        """Answer every query with SERVFAIL (a broken resolver) until told otherwise."""
        self._server.server.resolver.failing = failing

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()


def start_dns_server(names: dict[str, str], host: str = "127.0.0.1") -> DnsServer:
    """PTR and A records for `names` (IP -> "name.example."), served on host:<free UDP port>."""
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=lambda _: None)
    server = DNSServer(_ZoneResolver(names), port=0, address=host, logger=logger)
    server.start_thread()
    return DnsServer(host, server.server.server_address[1], dict(names), server)
