"""What the inventory's integration tests share (this module holds no tests).

`running_inventory` opens the real store (migrated) against the `database_url` fixture
(SQLite and PostgreSQL), serves `InventoryService` in-process on 127.0.0.1:<free port>
through `outpost.runtime.build_grpc_server` (so the error-mapping interceptor is the real
one) and hands back a stub on a real channel. Batches go in as a gateway session sends
them: `agent_pb2.ResultBatch` through `BatchIngest`, the session loop's entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import sqlalchemy as sa

from outpost.agent.v1 import agent_pb2
from outpost.auth import service_tokens
from outpost.auth.interceptor import Authenticator, AuthInterceptor
from outpost.auth.registry_tokens import RegistryTokens
from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpost.runtime import build_grpc_server
from services.gateway.api.inventory_servicer import SERVICE_NAME, InventoryServicer
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.store.commit import CommitResult
from services.gateway.inventory.store.database import open_inventory
from services.gateway.inventory.store.queries import InventoryStore
from tests.integration.test_registry_support import running_registry
from tests.integration.test_scheduler_support import registry_url

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SCANNED = (22, 80, 443)
COLLECTOR_UID = "c0ffee00-0000-4000-8000-000000000001"


@dataclass
class RunningInventory:
    store: InventoryStore
    ingest: BatchIngest
    stub: gateway_pb2_grpc.InventoryServiceStub

    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        zone: str = "dmz",
        scanned: Iterable[int] = SCANNED,
        instance_uid: str = COLLECTOR_UID,
        collector: str = "edge-1",
    ) -> CommitResult:
        return await self.ingest.ingest(
            batch, instance_uid=instance_uid, collector=collector, zone=zone, scanned_ports=list(scanned)
        )

    async def devices(self, zone: str = "") -> list[gateway_pb2.Device]:
        """Every device (of `zone`), every page."""
        found: list[gateway_pb2.Device] = []
        token = ""
        while True:
            response = await self.stub.ListDevices(
                gateway_pb2.ListDevicesRequest(zone=zone, page_size=1000, page_token=token)
            )
            found += response.devices
            token = response.next_page_token
            if not token:
                return found

    async def device(self, ip: str, zone: str = "") -> gateway_pb2.GetDeviceResponse:
        response: gateway_pb2.GetDeviceResponse = await self.stub.GetDevice(
            gateway_pb2.GetDeviceRequest(ip=ip, zone=zone)
        )
        return response

    async def history(self, ip: str, zone: str = "") -> list[tuple[str, str, str, str]]:
        """(field, old, new, job run) of every change of one device, oldest first."""
        response = await self.device(ip, zone)
        return [(c.field, c.old_value, c.new_value, c.job_run_id) for c in response.history]

    async def row_counts(self) -> dict[str, int]:
        async with self.store.read() as conn:
            return {
                table: int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in ("devices", "device_ports", "device_changes", "ingested_batches")
            }


@asynccontextmanager
async def running_inventory(database_url: str) -> AsyncIterator[RunningInventory]:
    """The inventory served as the gateway's admin listener serves it: admin tokens checked
    with a real registry beside it; `stub` reads as the admin "alice"."""
    async with running_registry(registry_url(database_url)) as registry:
        credentials = registry.credentials
        registry_channel = service_tokens.peer_channel(
            f"127.0.0.1:{registry.port}", None, credentials.identity("gateway")
        )
        store = await open_inventory(database_url)
        auth = AuthInterceptor(Authenticator({}, RegistryTokens(registry_channel)), service="gateway")
        server, _health = build_grpc_server(service_names=[SERVICE_NAME], auth=auth)
        gateway_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(store), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=credentials.interceptors())
        try:
            yield RunningInventory(store, BatchIngest(store), gateway_pb2_grpc.InventoryServiceStub(channel))
        finally:
            await channel.close()
            await server.stop(0)
            await store.close()
            await registry_channel.close()


def port(number: int, banner: str = "", service: str = "", **parts: object) -> agent_pb2.PortObservation:
    return agent_pb2.PortObservation(port=number, protocol="tcp", service=service, banner=banner, **parts)  # type: ignore[arg-type]


def device(
    ip: str,
    *ports: agent_pb2.PortObservation,
    hostname: str | None = None,
    macs: Sequence[str] = (),
    snmp: agent_pb2.SnmpFacts | None = None,
) -> agent_pb2.DeviceObservation:
    observation = agent_pb2.DeviceObservation(ip=ip, hostname=hostname, ports=ports, mac_addresses=list(macs))
    if snmp is not None:
        observation.snmp.CopyFrom(snmp)
    return observation


def batch(
    run: str, sequence: int, devices: Iterable[agent_pb2.DeviceObservation], at: datetime = T0, *, attempt: int = 1
) -> agent_pb2.ResultBatch:
    return agent_pb2.ResultBatch(
        job_run_id=run,
        sequence=sequence,
        attempt=attempt,
        devices=list(devices),
        observed_at_unix_ms=int(at.timestamp() * 1000),
    )


def later(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)
