"""Admin API of the gateway: its identity, listeners and live sessions (in pages by session id)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import paging
from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpost.session.server import ServerState
from outpost.version import VERSION
from services.gateway.sessions.hub import SessionHub

STATE_TO_PROTO = {
    ServerState.PENDING: 1,
    ServerState.ENABLED: 2,
    ServerState.DISABLED: 3,
}


@dataclass(frozen=True)
class ListenerInfo:
    transport: str
    address: str
    tls: bool


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, gateway_id: str, hub: SessionHub, listeners: list[ListenerInfo], started_at: float) -> None:
        self._gateway_id = gateway_id
        self._hub = hub
        self._listeners = listeners
        self._started_at = started_at

    async def GetGatewayInfo(
        self, request: gateway_pb2.GetGatewayInfoRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetGatewayInfoResponse:
        return gateway_pb2.GetGatewayInfoResponse(
            gateway_id=self._gateway_id,
            version=VERSION,
            listeners=[
                gateway_pb2.Listener(transport=x.transport, address=x.address, tls=x.tls) for x in self._listeners
            ],
            started_at=_timestamp(self._started_at),
            sessions=len(self._hub),
        )

    async def ListSessions(
        self, request: gateway_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListSessionsResponse:
        page, next_token = paging.page_of_sorted(
            self._hub.sessions(),
            lambda s: (s.session_id,),
            (str,),
            kind="sessions",
            filters={},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return gateway_pb2.ListSessionsResponse(
            next_page_token=next_token,
            sessions=[
                gateway_pb2.Session(
                    session_id=s.session_id,
                    instance_uid=s.instance_uid,
                    name=s.name,
                    transport=s.transport,
                    remote_address=s.remote_address,
                    state=STATE_TO_PROTO.get(s.state, 0),  # type: ignore[arg-type]
                    opened_at=_timestamp(s.opened_at),
                    last_message_at=_timestamp(s.last_message_at),
                )
                for s in page
            ],
        )
