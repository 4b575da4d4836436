"""`outpost.scheduler.v1.SchedulerService`: protobuf in, catalog/dispatcher calls, protobuf out.

No decisions are made here. Errors are raised as `outpost.errors.*` by the layers below
and become gRPC statuses in the shared interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

import grpc

from outpost.auth.principals import current_principal
from outpost.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.api import convert
from services.scheduler.catalog import Catalog
from services.scheduler.dispatcher import ClaimRequest, Dispatcher
from services.scheduler.store.queries import RunFilter
from services.scheduler.watch import WatchHub


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, catalog: Catalog, dispatcher: Dispatcher, hub: WatchHub) -> None:
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._hub = hub

    # --- admins -------------------------------------------------------------------------
    async def CreateDiscovery(
        self, request: scheduler_pb2.CreateDiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.CreateDiscoveryResponse:
        created = await self._catalog.create_discovery(
            convert.discovery_from_proto(request.discovery), allow_unknown=request.allow_unknown
        )
        return scheduler_pb2.CreateDiscoveryResponse(discovery=convert.discovery(created))

    async def ListDiscoveries(
        self, request: scheduler_pb2.ListDiscoveriesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ListDiscoveriesResponse:
        found, next_token = await self._catalog.list_discoveries(
            page_size=request.page_size, page_token=request.page_token
        )
        return scheduler_pb2.ListDiscoveriesResponse(
            discoveries=[convert.discovery(d) for d in found], next_page_token=next_token
        )

    async def GetDiscovery(
        self, request: scheduler_pb2.GetDiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.GetDiscoveryResponse:
        found = await self._catalog.get_discovery(request.name)
        return scheduler_pb2.GetDiscoveryResponse(discovery=convert.discovery(found))

    async def DeleteDiscovery(
        self, request: scheduler_pb2.DeleteDiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.DeleteDiscoveryResponse:
        await self._catalog.delete_discovery(request.name)
        return scheduler_pb2.DeleteDiscoveryResponse()

    async def CreateSchedule(
        self, request: scheduler_pb2.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.CreateScheduleResponse:
        s = request.schedule
        created = await self._catalog.create_schedule(
            name=s.name,
            discovery=s.discovery,
            minute=s.minute,
            hour=s.hour,
            day_of_month=s.day_of_month,
            month=s.month,
            day_of_week=s.day_of_week,
            timezone=s.timezone,
            enabled=s.enabled,
            missed_run_policy=convert.POLICY_FROM_PROTO.get(s.missed_run_policy),
        )
        return scheduler_pb2.CreateScheduleResponse(schedule=convert.schedule(created))

    async def ListSchedules(
        self, request: scheduler_pb2.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ListSchedulesResponse:
        found, next_token = await self._catalog.list_schedules(
            discovery=request.discovery, page_size=request.page_size, page_token=request.page_token
        )
        return scheduler_pb2.ListSchedulesResponse(
            schedules=[convert.schedule(s) for s in found], next_page_token=next_token
        )

    async def DeleteSchedule(
        self, request: scheduler_pb2.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.DeleteScheduleResponse:
        await self._catalog.delete_schedule(request.name)
        return scheduler_pb2.DeleteScheduleResponse()

    async def SetScheduleEnabled(
        self, request: scheduler_pb2.SetScheduleEnabledRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.SetScheduleEnabledResponse:
        changed = await self._catalog.set_schedule_enabled(request.name, request.enabled)
        return scheduler_pb2.SetScheduleEnabledResponse(schedule=convert.schedule(changed))

    async def StartDiscovery(
        self, request: scheduler_pb2.StartDiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.StartDiscoveryResponse:
        run = await self._dispatcher.start_discovery(request.name, current_principal().name)
        return scheduler_pb2.StartDiscoveryResponse(job_run=convert.job_run(run))

    async def ListJobRuns(
        self, request: scheduler_pb2.ListJobRunsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ListJobRunsResponse:
        where = RunFilter(
            discovery=request.discovery.strip(),
            collector=request.collector.strip(),
            state=convert.STATE_FROM_PROTO.get(request.state),  # UNSPECIFIED (or unknown): all
            created_since=request.created_since.ToDatetime(tzinfo=UTC) if request.HasField("created_since") else None,
        )
        # `limit` is what clients before pages sent: honoured as the page size.
        found, next_token = await self._dispatcher.list_runs(
            where, page_size=request.page_size or request.limit, page_token=request.page_token
        )
        return scheduler_pb2.ListJobRunsResponse(
            job_runs=[convert.job_run(r) for r in found], next_page_token=next_token
        )

    async def GetJobRun(
        self, request: scheduler_pb2.GetJobRunRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.GetJobRunResponse:
        run = await self._dispatcher.get_run(request.id)
        return scheduler_pb2.GetJobRunResponse(job_run=convert.job_run(run))

    async def CancelJobRun(
        self, request: scheduler_pb2.CancelJobRunRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.CancelJobRunResponse:
        run = await self._dispatcher.cancel(request.id, actor=current_principal().name, reason=request.reason)
        return scheduler_pb2.CancelJobRunResponse(job_run=convert.job_run(run))

    async def GetSettings(
        self, request: scheduler_pb2.GetSettingsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.GetSettingsResponse:
        current = await self._catalog.get_settings()
        return scheduler_pb2.GetSettingsResponse(settings=convert.settings(current))

    async def UpdateSettings(
        self, request: scheduler_pb2.UpdateSettingsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.UpdateSettingsResponse:
        changed = await self._catalog.update_settings(
            convert.settings_from_proto(request.settings), list(request.fields)
        )
        return scheduler_pb2.UpdateSettingsResponse(settings=convert.settings(changed))

    # --- gateways -----------------------------------------------------------------------
    async def WatchDispatch(
        self, request: scheduler_pb2.WatchDispatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[scheduler_pb2.DispatchEvent]:
        async for event in self._hub.watch(request.since_revision):
            yield convert.dispatch_event(event)

    async def ClaimJobRuns(
        self, request: scheduler_pb2.ClaimJobRunsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ClaimJobRunsResponse:
        claimed = await self._dispatcher.claim(
            ClaimRequest(
                gateway_id=request.gateway_id,
                collector_instance_uid=request.collector_instance_uid,
                collector=request.collector,
                zone=request.zone,
                limit=request.limit,
            )
        )
        return scheduler_pb2.ClaimJobRunsResponse(job_runs=[convert.job_run(r) for r in claimed])

    async def ReportJobUpdate(
        self, request: scheduler_pb2.ReportJobUpdateRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.ReportJobUpdateResponse:
        run = await self._dispatcher.report(
            request.gateway_id,
            request.collector_instance_uid,
            convert.job_update(request.update),
            observations_stale=request.observations_stale,
        )
        return scheduler_pb2.ReportJobUpdateResponse(job_run=convert.job_run(run))

    async def RenewLeases(
        self, request: scheduler_pb2.RenewLeasesRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.RenewLeasesResponse:
        lost = await self._dispatcher.renew_leases(request.gateway_id, [convert.lease_hold(h) for h in request.holds])
        return scheduler_pb2.RenewLeasesResponse(
            lost=[convert.lost_lease(x) for x in lost], lease_seconds=self._dispatcher.leases.seconds
        )
