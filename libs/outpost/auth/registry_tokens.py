"""Admin tokens presented to the scheduler or a gateway, checked with the registry.

The registry owns tokens; other services ask it per call (`AuthenticateToken`, which only
service identities may call), so a revocation holds from the next call everywhere. A
registry that cannot be reached makes admin calls fail UNAVAILABLE, never pass.
"""

from __future__ import annotations

import grpc

from outpost import errors
from outpost.auth.principals import Principal, Role
from outpost.grpc_errors import error_from_rpc
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc

CHECK_TIMEOUT_SECONDS = 5.0
ROLE_FROM_PROTO = {
    registry_pb2.ROLE_VIEWER: Role.VIEWER,
    registry_pb2.ROLE_OPERATOR: Role.OPERATOR,
    registry_pb2.ROLE_ADMIN: Role.ADMIN,
}


class RegistryTokens:
    """`AdminTokens` over a channel to the registry that presents this service's identity."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)

    async def __call__(self, token_digest: bytes) -> Principal:
        try:
            reply = await self._stub.AuthenticateToken(
                registry_pb2.AuthenticateTokenRequest(token_sha256=token_digest), timeout=CHECK_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc)
            if isinstance(error, errors.Unauthenticated):
                raise error from exc
            raise errors.Unavailable(f"cannot check the token with the registry: {error}") from exc
        role = ROLE_FROM_PROTO.get(reply.role)
        if role is None:
            raise errors.Unavailable("the registry answered a token check without a role")
        return Principal(name=reply.name, role=role)
