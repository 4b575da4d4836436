"""aiohttp connections through an HTTP proxy, always as a CONNECT tunnel (see `transport.proxy`)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp

from services.collector.transport.proxy import Proxy, ProxyError, open_tunnel


class TunnelConnector(aiohttp.TCPConnector):
    """aiohttp's connector, every connection a CONNECT tunnel through one proxy.

    aiohttp tunnels only TLS URLs itself and forwards plain ones in absolute form, which
    no proxy does for a WebSocket upgrade; so the tunnel is opened here and handed to
    aiohttp as a connected socket (TLS on top for wss/https). `_create_connection` is the
    method aiohttp's own connectors (TCP, Unix) implement; aiohttp is pinned, and
    tests/e2e/test_http_proxy.py runs every transport through a real proxy (tinyproxy).
    """

    def __init__(self, proxy: Proxy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proxy = proxy

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        host, port = req.url.raw_host or "", req.url.port or 0
        try:
            sock = await open_tunnel(self._proxy, host, port)
        except (OSError, ProxyError, TimeoutError) as exc:
            # aiohttp shows an OSError's strerror: put the proxy's answer there.
            reason = OSError(getattr(exc, "errno", None) or 0, str(exc) or type(exc).__name__)
            raise aiohttp.ClientProxyConnectionError(req.connection_key, reason) from exc
        context: ssl.SSLContext | None = None
        if req.is_ssl():
            context = req.ssl if isinstance(req.ssl, ssl.SSLContext) else ssl.create_default_context()
        try:
            _, protocol = await asyncio.get_running_loop().create_connection(
                self._factory, sock=sock, ssl=context, server_hostname=host if context else None
            )
        except BaseException:
            sock.close()
            raise
        return protocol
