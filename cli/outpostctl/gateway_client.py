"""The gateway's admin calls: which listeners it has and how many sessions it holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpostctl.endpoints import Connection, Endpoints


@dataclass(frozen=True)
class Listener:
    transport: str
    address: str
    tls: bool


@dataclass(frozen=True)
class GatewayInfo:
    gateway_id: str
    version: str
    listeners: list[Listener]
    started_at: datetime | None
    sessions: int


class GatewayClient(Connection):
    service = "gateway"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.gateway, endpoints)
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)

    def get_gateway_info(self) -> GatewayInfo:
        reply = self.call(self._stub.GetGatewayInfo, gateway_pb2.GetGatewayInfoRequest())
        started = reply.started_at.ToDatetime(tzinfo=UTC) if reply.HasField("started_at") else None
        return GatewayInfo(
            gateway_id=reply.gateway_id,
            version=reply.version,
            listeners=[Listener(x.transport, x.address, x.tls) for x in reply.listeners],
            started_at=started,
            sessions=reply.sessions,
        )
