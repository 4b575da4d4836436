"""The gRPC agent stream's address: the peer, or its `x-forwarded-for` from a trusted proxy only (ADR 0026).

A real grpc.aio server whose one method builds the gateway's `GrpcAgentStream` from the
call's context, as `AgentService/Connect` does, and answers with the address the session
would carry. The client sends forwarded metadata like an L7 gRPC proxy (Envoy,
ingress-nginx) would; whether it is believed depends only on the server's
`--trusted-proxies`.
"""

from __future__ import annotations

from typing import Any

import grpc

from services.gateway.transports.client_address import TrustedProxies
from services.gateway.transports.grpc_stream import GrpcAgentStream


async def _address_seen(trusted: TrustedProxies, metadata: tuple[tuple[str, str], ...]) -> str:
    async def whoami(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return GrpcAgentStream(context, trusted).remote_address.encode()

    handler: Any = grpc.method_handlers_generic_handler(
        "test.Whoami", {"Ask": grpc.unary_unary_rpc_method_handler(whoami)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            ask = channel.unary_unary("/test.Whoami/Ask")
            answer: bytes = await ask(b"", metadata=metadata, timeout=10)
            return answer.decode()
    finally:
        await server.stop(None)


async def test_forwarded_metadata_from_an_untrusted_peer_is_ignored() -> None:
    seen = await _address_seen(TrustedProxies.parse("192.0.2.0/24"), (("x-forwarded-for", "203.0.113.7"),))
    assert seen.startswith("127.0.0.1:")
    seen = await _address_seen(TrustedProxies(), (("forwarded", "for=203.0.113.7"),))
    assert seen.startswith("127.0.0.1:")


async def test_forwarded_metadata_from_a_trusted_proxy_names_the_client() -> None:
    trusted = TrustedProxies.parse("127.0.0.1/32")
    assert await _address_seen(trusted, (("x-forwarded-for", "10.9.9.9, 203.0.113.7"),)) == "203.0.113.7"
    assert await _address_seen(trusted, (("forwarded", 'for="[2001:db8::7]:4711"'),)) == "[2001:db8::7]"
    assert (await _address_seen(trusted, ())).startswith("127.0.0.1:")
