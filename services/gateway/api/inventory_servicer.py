"""`outpost.gateway.v1.InventoryService`: protobuf in, inventory queries, protobuf out.

No decisions are made here. Not-found and ambiguous lookups are raised as
`outpost.errors.*` by the store and become gRPC statuses in the shared interceptor. A
device lists every port it ever had open or filtered, each with its state ("open",
"closed", "filtered"); how it got there is in its history ("port.80" open -> filtered).
Devices come in keyset pages with filters (`store/queries.py`, `outpost.paging`).
History comes in pages (`store/history.py`): GetDevice carries the newest page and a token
when older entries exist; ListDeviceHistory pages on from there. Facts and
port details are already the flat string maps the contract names
("snmp.sys_name", "audit.kernel", "http.title", "tls.not_after", ...).
A device's notes are its newest per probe ("snmp: no answer"; domain/notes.py), not history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.gateway.inventory.domain.device import Change, DeviceRecord, PortRecord
from services.gateway.inventory.domain.device_filter import device_filter
from services.gateway.inventory.domain.notes import DeviceNote
from services.gateway.inventory.store.queries import InventoryStore

SERVICE_NAME = "outpost.gateway.v1.InventoryService"


class InventoryServicer(gateway_pb2_grpc.InventoryServiceServicer):
    def __init__(self, store: InventoryStore) -> None:
        self._store = store

    async def ListDevices(
        self, request: gateway_pb2.ListDevicesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDevicesResponse:
        where = device_filter(
            zone=request.zone or None,
            include_retired=request.include_retired,
            cidr=request.cidr,
            port=request.port,
            service=request.service,
            seen_since=request.seen_since.ToDatetime(tzinfo=UTC) if request.HasField("seen_since") else None,
        )
        # `limit` is what clients before pages sent: honoured as the page size.
        found, next_token = await self._store.list_devices(
            where, page_size=request.page_size or request.limit, page_token=request.page_token
        )
        notes = await self._store.notes([d.id for d in found])
        return gateway_pb2.ListDevicesResponse(
            devices=[_device(d, notes.get(d.id, ())) for d in found], next_page_token=next_token
        )

    async def GetDevice(
        self, request: gateway_pb2.GetDeviceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetDeviceResponse:
        device, history, next_token = await self._store.get_device(
            request.ip,
            zone=request.zone or None,
            history_page_size=request.history_page_size,
            history_page_token=request.history_page_token,
        )
        notes = await self._store.notes([device.id])
        return gateway_pb2.GetDeviceResponse(
            device=_device(device, notes.get(device.id, ())),
            history=[_change(c) for c in history],
            history_next_page_token=next_token,
        )

    async def ListDeviceHistory(
        self, request: gateway_pb2.ListDeviceHistoryRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ListDeviceHistoryResponse:
        changes, next_token = await self._store.list_device_history(
            request.ip, zone=request.zone or None, page_size=request.page_size, page_token=request.page_token
        )
        return gateway_pb2.ListDeviceHistoryResponse(changes=[_change(c) for c in changes], next_page_token=next_token)


def _device(device: DeviceRecord, notes: Iterable[DeviceNote] = ()) -> gateway_pb2.Device:
    return gateway_pb2.Device(
        id=device.id,
        zone=device.zone,
        ip=device.ip,
        hostname=device.hostname,
        mac_addresses=list(device.mac_addresses),
        snmp_engine_id=device.snmp_engine_id,
        ports=[_port(p) for p in device.known_ports()],
        facts=dict(device.facts),
        first_seen=_timestamp(device.first_seen),
        last_seen=_timestamp(device.last_seen),
        last_collector=device.last_collector,
        last_job_run_id=device.last_job_run_id,
        notes=[note.text for note in notes],
        retired=device.retired_at is not None,
        missed_runs=device.missed_runs,
        retired_at=_timestamp(device.retired_at) if device.retired_at is not None else None,
    )


def _port(port: PortRecord) -> gateway_pb2.Port:
    return gateway_pb2.Port(
        port=port.port,
        protocol=port.protocol,
        service=port.service,
        banner=port.banner,
        details=dict(port.details),
        first_seen=_timestamp(port.first_seen),
        last_seen=_timestamp(port.last_seen),
        state=port.state,
    )


def _change(change: Change) -> gateway_pb2.DeviceChange:
    return gateway_pb2.DeviceChange(
        field=change.field,
        old_value=change.old_value,
        new_value=change.new_value,
        changed_at=_timestamp(change.changed_at),
        job_run_id=change.job_run_id,
    )


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
