"""The WebSocket transport: binary messages at `/v1/agent`, one envelope per message.

aiohttp serves it (and, with the next capability, HTTP polling on the same port). Text
messages are refused with a clear close reason; oversized messages are refused by
aiohttp's `max_msg_size` with close code 1009.
"""

from __future__ import annotations

import ssl

import aiohttp
from aiohttp import web

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from services.gateway.sessions.agent_session import run_session
from services.gateway.sessions.context import GatewayContext
from services.gateway.transports.client_address import TrustedProxies, forwarded_client, peer_address

AGENT_PATH = "/v1/agent"
R = agent_pb2.DisconnectReason


class WebSocketAgentStream:
    transport = "websocket"

    def __init__(self, ws: web.WebSocketResponse, remote_address: str) -> None:
        self._ws = ws
        self.remote_address = remote_address

    async def recv(self) -> bytes | None:
        message = await self._ws.receive()
        if message.type is aiohttp.WSMsgType.BINARY:
            return bytes(message.data)
        if message.type is aiohttp.WSMsgType.TEXT:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_MALFORMED_FRAME, "text messages are not accepted; send binary protobuf envelopes"
            )
        if message.type is aiohttp.WSMsgType.ERROR:
            exc = self._ws.exception()
            if isinstance(exc, aiohttp.WebSocketError) and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                raise RemoteProtocolError(R.DISCONNECT_REASON_FRAME_TOO_LARGE, str(exc))
            raise RemoteProtocolError(R.DISCONNECT_REASON_MALFORMED_FRAME, f"invalid WebSocket frame: {exc}")
        return None  # CLOSE, CLOSING, CLOSED

    async def send(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def close(self, reason: str) -> None:
        await self._ws.close(code=aiohttp.WSCloseCode.OK, message=reason.encode()[:120])


def request_client(request: web.Request, trusted: TrustedProxies) -> str:
    """The collector's address for an HTTP request: the peer, or its forwarded client if the peer is trusted."""
    peer = peer_address(request.transport.get_extra_info("peername")) if request.transport else None
    return forwarded_client(
        peer,
        trusted,
        forwarded=request.headers.getall("Forwarded", []),
        x_forwarded_for=request.headers.getall("X-Forwarded-For", []),
    )


def build_websocket_app(ctx: GatewayContext, max_frame_bytes: int) -> web.Application:
    async def agent(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=max_frame_bytes, compress=False, autoping=True)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="this endpoint speaks WebSocket only (binary protobuf envelopes)\n")
        await ws.prepare(request)
        await run_session(WebSocketAgentStream(ws, request_client(request, ctx.trusted_proxies)), ctx)
        return ws

    app = web.Application(client_max_size=max_frame_bytes)
    app.router.add_get(AGENT_PATH, agent)
    return app


async def start_websocket_site(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024)
    await site.start()
    server = site._server  # aiohttp exposes the bound socket only here
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, int(bound)
