"""The bare transports Outpost is weighed against: plain servers and their idle clients.

Run as a child process (`python bench/harness/bare_servers.py KIND --ready-file PATH`),
it serves one kind on a loopback port (a free one, or `--port`) and writes
`{"pid": ..., "port": ...}` to the ready file. Each server holds a connection open and
reads from it, nothing else:

    websocket  a plain `websockets` asyncio server, compression off, discarding messages
    aiohttp    a plain aiohttp WebSocket endpoint, compression off (the gateway's stack)
    tcp        `asyncio.start_server`, reading until EOF
    grpc       a plain `grpc.aio` server with one raw-bytes bidi-stream method; it answers
               the client's one message once (so the client knows the stream is up),
               then reads until the stream ends; and one raw-bytes unary method,
               `GRPC_ECHO_METHOD`, that returns its request (no interceptor, no
               servicer: the floor under any RPC, `admin_auth_cost.py`)

Imported by the bench, `BARE_CLIENTS[kind]` opens one idle client of that kind and
returns an async close function. Every client gets its own connection: gRPC channels
to one target share a TCP connection unless told otherwise, and N collectors are N
processes, so the bench asks for a local subchannel pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import websockets
from aiohttp import web
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve

from outpost.ready import write_ready_file

HOST = "127.0.0.1"
GRPC_METHOD = "/bench.Bare/Connect"
GRPC_ECHO_METHOD = "/bench.Bare/Echo"
OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)

Close = Callable[[], Awaitable[None]]


# --- servers (child process) -------------------------------------------------------------
async def _serve_websocket(ready: Callable[[int], None], port: int = 0) -> None:
    async def handler(connection: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _message in connection:
                pass

    async with serve(handler, HOST, port, compression=None) as server:
        ready(server.sockets[0].getsockname()[1])
        await asyncio.Future()


async def _serve_aiohttp(ready: Callable[[int], None], port: int = 0) -> None:
    async def agent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for _message in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", agent)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024)
    await site.start()
    ready(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.Future()


async def _serve_tcp(ready: Callable[[int], None], port: int = 0) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(64 * 1024):
                pass
        writer.close()

    server = await asyncio.start_server(handle, HOST, port, backlog=1024)
    ready(server.sockets[0].getsockname()[1])
    await asyncio.Future()


async def _serve_grpc(ready: Callable[[int], None], port: int = 0) -> None:
    async def connect(_requests: Any, context: grpc.aio.ServicerContext) -> None:
        answered = False
        while (await context.read()) is not grpc.aio.EOF:
            if not answered:
                await context.write(b"ok")
                answered = True

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "bench.Bare",
                {
                    "Connect": grpc.stream_stream_rpc_method_handler(connect),
                    "Echo": grpc.unary_unary_rpc_method_handler(echo),
                },
            )
        ]
    )
    bound = server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    ready(bound)
    await server.wait_for_termination()


SERVERS = {"websocket": _serve_websocket, "aiohttp": _serve_aiohttp, "tcp": _serve_tcp, "grpc": _serve_grpc}


# --- idle clients (the bench process) ----------------------------------------------------
async def open_websocket(port: int) -> Close:
    connection = await ws_connect(f"ws://{HOST}:{port}/", compression=None, open_timeout=30)

    async def close() -> None:
        await connection.close()

    return close


async def open_aiohttp(port: int) -> Close:
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(f"ws://{HOST}:{port}/", heartbeat=None, autoping=True)
    except BaseException:
        await http.close()
        raise

    async def close() -> None:
        try:
            await ws.close()
        finally:
            await http.close()

    return close


async def open_tcp(port: int) -> Close:
    _reader, writer = await asyncio.open_connection(HOST, port)

    async def close() -> None:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    return close


async def open_grpc(port: int) -> Close:
    channel = grpc.aio.insecure_channel(f"{HOST}:{port}", options=[OWN_CONNECTION])
    call = channel.stream_stream(GRPC_METHOD, request_serializer=None, response_deserializer=None)()
    await call.write(b"hello")
    await call.read()  # the server's one answer: the stream is up on both ends

    async def close() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await call.done_writing()
        call.cancel()
        await channel.close()

    return close


BARE_CLIENTS: dict[str, Callable[[int], Awaitable[Close]]] = {
    "websocket": open_websocket,
    "aiohttp": open_aiohttp,
    "tcp": open_tcp,
    "grpc": open_grpc,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="one bare transport server for bench/idle_sessions.py")
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def ready(port: int) -> None:
        write_ready_file(args.ready_file, kind=args.kind, port=port)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(SERVERS[args.kind](ready, args.port))


if __name__ == "__main__":
    main()
