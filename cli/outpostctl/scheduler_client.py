"""The scheduler, as far as outpostctl needs it yet: its standard gRPC health status.

Behind a single ingress (`--server`) the health service is shared by every backend, so
the answer comes from whichever service the ingress routes `grpc.health.v1.Health` to.
"""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc

from outpostctl.endpoints import Connection, Endpoints


class SchedulerClient(Connection):
    service = "scheduler"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.scheduler, endpoints)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def health(self) -> str:
        """The server's overall status: SERVING, NOT_SERVING, ..."""
        reply = self.call(self._health.Check, health_pb2.HealthCheckRequest(service=""))
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
