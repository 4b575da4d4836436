"""A layer-4 load balancer on loopback that speaks the PROXY protocol to its upstream.

Like HAProxy with `send-proxy` (v1) or `send-proxy-v2`, or a cloud network load
balancer with PROXY protocol turned on: every connection it forwards starts with one
header naming `client` as the source, then carries the client's bytes unchanged. It
dials the upstream from `source` (a loopback address such as 127.0.0.2, which Linux
routes to itself), so a gateway can trust it by address while the test's own sockets,
from 127.0.0.1, stay untrusted. `header` replaces the header with any bytes (malformed
ones) for attacks.
"""

from __future__ import annotations

import asyncio

from services.gateway.transports.proxy_protocol import encode_v1, encode_v2
from tests.peers.tcp_proxy import TcpProxy

TRUSTED_SOURCE = "127.0.0.2"


class ProxyProtocolBalancer(TcpProxy):
    def __init__(
        self,
        upstream: str,
        client: tuple[str, int],
        *,
        version: int = 1,
        source: str = TRUSTED_SOURCE,
        header: bytes | None = None,
    ) -> None:
        super().__init__(upstream)
        self.source = source
        upstream_address = self.upstream
        if header is None:
            header = encode_v1(client, upstream_address) if version == 1 else encode_v2(client, upstream_address)
        self.header = header

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*self.upstream, local_addr=(self.source, 0))
        writer.write(self.header)
        await writer.drain()
        return reader, writer
