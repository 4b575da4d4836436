"""The gRPC bidirectional stream `outpost.agent.v1.AgentService/Connect`, raw bytes.

The stream is opened with no (de)serializers, so gRPC hands over the same serialized
envelopes the other transports carry and one decode path serves all of them. A
grpc.aio `read()` that is cancelled cancels the whole RPC, so one reader task per
connection pumps responses into a bounded queue and `recv()` waits on the queue, which
is safe to cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc

from services.collector.domain.server_url import ServerUrl
from services.collector.transport import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    ClientTls,
    TransportError,
)
from services.collector.transport.proxy import Proxy

CONNECT_METHOD = "/outpost.agent.v1.AgentService/Connect"
RECEIVE_QUEUE = 64

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 0),
]


class GrpcTransport:
    def __init__(self, channel: grpc.aio.Channel, call: Any) -> None:
        self._channel = channel
        self._call = call
        self._incoming: asyncio.Queue[bytes | TransportError | None] = asyncio.Queue(RECEIVE_QUEUE)
        self._reader = asyncio.create_task(self._read_responses(), name="grpc-agent-reader")
        self._closed = False

    @classmethod
    async def open(cls, url: ServerUrl, tls: ClientTls, proxy: Proxy | None = None) -> GrpcTransport:
        # The proxy decision is ours (transport.proxy), not gRPC core's own reading of the
        # environment: the proxy (gRPC CONNECTs through it), or none at all.
        route = ("grpc.http_proxy", proxy.url) if proxy is not None else ("grpc.enable_http_proxy", 0)
        options = [*CHANNEL_OPTIONS, route]
        # grpc connects lazily: a refused or failed connection shows on the first
        # send/recv as UNAVAILABLE with the reason, which is more use than "not ready".
        if url.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
            channel = grpc.aio.secure_channel(url.hostport, credentials, options=options)
        else:
            channel = grpc.aio.insecure_channel(url.hostport, options=options)
        connect = channel.stream_stream(CONNECT_METHOD, request_serializer=None, response_deserializer=None)
        return cls(channel, connect())

    async def send(self, payload: bytes) -> None:
        try:
            await self._call.write(payload)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            raise TransportError(f"send failed: {_describe(exc)}") from exc

    async def recv(self) -> bytes | None:
        if self._closed:
            return None
        item = await self._incoming.get()
        if isinstance(item, TransportError):
            raise item
        return item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Half-close so the last envelope (a Disconnect) is delivered, give the server a
        # moment to end the stream, then tear the channel down regardless.
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._call.done_writing()
                await asyncio.wait({self._reader})
        self._reader.cancel()
        self._call.cancel()
        await self._channel.close()

    async def _read_responses(self) -> None:
        ending: TransportError | None = None
        try:
            while (response := await self._call.read()) is not grpc.aio.EOF:
                await self._incoming.put(response)
        except grpc.aio.AioRpcError as exc:
            ending = TransportError(_describe(exc))
        await self._incoming.put(ending)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
