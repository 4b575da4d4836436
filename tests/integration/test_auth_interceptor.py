"""The auth interceptor on a real grpc.aio server: a method without a rule is refused by
default, whatever the credential; the agent stream is not served behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from outpost.auth import bearer
from outpost.auth.interceptor import Authenticator, AuthInterceptor
from outpost.auth.principals import Principal, Role, current_principal
from outpost.runtime import build_grpc_server

SECRET = bearer.new_secret()
UNRULED = "/outpost.test.v1.NewService/DoSomethingNew"
RULED_READ = "/outpost.registry.v1.RegistryService/ListCollectors"


async def _admin_tokens(digest: bytes) -> Principal:
    if bearer.same_digest(digest, bearer.digest(SECRET)):
        return Principal("root", role=Role.ADMIN)
    from outpost import errors

    raise errors.Unauthenticated("token is not valid")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A server with two raw methods: one without a rule, one with a viewer rule."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return current_principal().name.encode()

    handler = grpc.method_handlers_generic_handler(
        "outpost.test.v1.NewService", {"DoSomethingNew": grpc.unary_unary_rpc_method_handler(echo)}
    )
    listed = grpc.method_handlers_generic_handler(
        "outpost.registry.v1.RegistryService", {"ListCollectors": grpc.unary_unary_rpc_method_handler(echo)}
    )
    auth = AuthInterceptor(Authenticator({}, _admin_tokens), service="test")
    grpc_server, _ = build_grpc_server(service_names=[], auth=auth)
    grpc_server.add_generic_rpc_handlers([handler, listed])
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await grpc_server.stop(0)


async def _call(address: str, method: str, secret: str | None) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(address, interceptors=bearer.aio_bearer(secret)) as channel:
        try:
            reply = await channel.unary_unary(method)(b"", timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, reply.decode()


async def test_a_method_without_a_rule_is_refused_by_default_even_for_an_admin(server: str) -> None:
    code, details = await _call(server, UNRULED, SECRET)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "no authorization rule" in details
    assert (await _call(server, UNRULED, None))[0] == grpc.StatusCode.PERMISSION_DENIED


async def test_a_ruled_method_runs_as_the_authenticated_principal(server: str) -> None:
    assert await _call(server, RULED_READ, SECRET) == (grpc.StatusCode.OK, "root")
    assert (await _call(server, RULED_READ, None))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert (await _call(server, RULED_READ, bearer.new_secret()))[0] == grpc.StatusCode.UNAUTHENTICATED
