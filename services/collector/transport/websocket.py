"""WebSocket binary messages (aiohttp client); one envelope per message.

Liveness is our protocol's heartbeat, not aiohttp's (`heartbeat=None`); aiohttp still
answers the server's pings (`autoping`).
"""

from __future__ import annotations

import aiohttp

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from services.collector.domain.server_url import ServerUrl
from services.collector.transport import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    ClientTls,
    TransportError,
)
from services.collector.transport.http_tunnel import TunnelConnector
from services.collector.transport.proxy import Proxy

CLOSED_TYPES = frozenset({aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED})


class WebSocketTransport:
    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._http = http
        self._ws = ws

    @classmethod
    async def open(cls, url: ServerUrl, tls: ClientTls, proxy: Proxy | None = None) -> WebSocketTransport:
        scheme = "wss" if url.tls else "ws"
        http = aiohttp.ClientSession(connector=TunnelConnector(proxy) if proxy is not None else None)
        try:
            ws = await http.ws_connect(
                f"{scheme}://{url.hostport}{url.path}",
                ssl=tls.ssl_context if url.tls else True,
                max_msg_size=MAX_MESSAGE_BYTES,
                heartbeat=None,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
            )
        except (aiohttp.ClientError, OSError) as exc:
            await http.close()
            raise TransportError(f"cannot connect to {url}: {exc}") from exc
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def send(self, payload: bytes) -> None:
        try:
            await self._ws.send_bytes(payload)
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            raise TransportError(f"send failed: {exc}") from exc

    async def recv(self) -> bytes | None:
        message = await self._ws.receive()
        if message.type is aiohttp.WSMsgType.BINARY:
            data: bytes = message.data
            return data
        if message.type in CLOSED_TYPES:
            return None
        if message.type is aiohttp.WSMsgType.TEXT:
            raise RemoteProtocolError(
                agent_pb2.DisconnectReason.DISCONNECT_REASON_MALFORMED_FRAME,
                "text WebSocket message; the agent protocol uses binary messages",
            )
        # ERROR: aiohttp already closed the socket (oversized message, bad frame, reset)
        error = message.data
        if isinstance(error, aiohttp.WebSocketError) and error.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
            raise RemoteProtocolError(agent_pb2.DisconnectReason.DISCONNECT_REASON_FRAME_TOO_LARGE, str(error))
        raise TransportError(f"WebSocket error: {error}")

    async def close(self) -> None:
        try:
            await self._ws.close()
        finally:
            await self._http.close()
