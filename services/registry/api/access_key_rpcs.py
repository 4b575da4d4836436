"""The access-key and server-key RPCs of `RegistryService` (a mixin of `RegistryServicer`).

Admins create, list and revoke access keys; gateways watch them (with their secrets) and
fetch the server's static keys. A key's secret leaves the registry to an admin once, in
`CreateAccessKeyResponse.access_key_text`; `AccessKeyInfo` never carries it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import paging
from outpost.auth.principals import current_principal
from outpost.registry.v1 import registry_pb2
from services.registry.access_keys import AccessKeys
from services.registry.domain.access_keys import AccessKeyEvent, AccessKeyEventKind, AccessKeyRecord, AccessKeyState
from services.registry.domain.server_keys import ServerKey, ServerKeyState
from services.registry.server_keys import ServerKeys
from services.registry.watch import AccessKeyFeed

STATE_TO_PROTO = {
    AccessKeyState.VALID: registry_pb2.ACCESS_KEY_STATE_VALID,
    AccessKeyState.EXPIRED: registry_pb2.ACCESS_KEY_STATE_EXPIRED,
    AccessKeyState.REVOKED: registry_pb2.ACCESS_KEY_STATE_REVOKED,
}
SERVER_KEY_STATE_TO_PROTO = {
    ServerKeyState.CURRENT: registry_pb2.SERVER_KEY_STATE_CURRENT,
    ServerKeyState.NEXT: registry_pb2.SERVER_KEY_STATE_NEXT,
    ServerKeyState.RETIRED: registry_pb2.SERVER_KEY_STATE_RETIRED,
}
EVENT_KIND_TO_PROTO = {
    AccessKeyEventKind.CHANGED: registry_pb2.ACCESS_KEY_EVENT_KIND_CHANGED,
    AccessKeyEventKind.BOOKMARK: registry_pb2.ACCESS_KEY_EVENT_KIND_BOOKMARK,
}


class AccessKeyRpcs:
    _access_keys: AccessKeys
    _access_key_feed: AccessKeyFeed
    _server_keys: ServerKeys

    async def CreateAccessKey(
        self, request: registry_pb2.CreateAccessKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateAccessKeyResponse:
        record, key = await self._access_keys.create(
            request.name,
            zone=request.zone,
            expires_in_seconds=request.expires_in_seconds,
            actor=current_principal().name,
        )
        return registry_pb2.CreateAccessKeyResponse(
            access_key=self._info(record),
            access_key_text=key.encode(),
            server_key_fingerprint=await self._server_keys.current_fingerprint(),
        )

    async def RotateAccessKey(
        self, request: registry_pb2.RotateAccessKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RotateAccessKeyResponse:
        record, replaced, key = await self._access_keys.rotate(
            request.name,
            overlap_seconds=request.overlap_seconds,
            expires_in_seconds=request.expires_in_seconds,
            actor=current_principal().name,
        )
        return registry_pb2.RotateAccessKeyResponse(
            access_key=self._info(record),
            replaced=self._info(replaced),
            access_key_text=key.encode(),
            server_key_fingerprint=await self._server_keys.current_fingerprint(),
        )

    async def ListAccessKeys(
        self, request: registry_pb2.ListAccessKeysRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListAccessKeysResponse:
        found, next_token = paging.page_of_sorted(
            await self._access_keys.list_keys(include_revoked=request.include_revoked),
            lambda k: (k.name, k.created_at, k.key_id),
            (str, datetime, str),
            kind="access_keys",
            filters={"include_revoked": request.include_revoked},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return registry_pb2.ListAccessKeysResponse(
            access_keys=[self._info(k) for k in found], next_page_token=next_token
        )

    async def RevokeAccessKey(
        self, request: registry_pb2.RevokeAccessKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RevokeAccessKeyResponse:
        record = await self._access_keys.revoke(request.name, actor=current_principal().name)
        return registry_pb2.RevokeAccessKeyResponse(access_key=self._info(record))

    async def WatchAccessKeys(
        self, request: registry_pb2.WatchAccessKeysRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.AccessKeyEvent]:
        async for event in self._access_key_feed.watch(request.since_revision):
            yield _event(event)

    async def GetServerKeys(
        self, request: registry_pb2.GetServerKeysRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetServerKeysResponse:
        return registry_pb2.GetServerKeysResponse(keys=[_server_key(k) for k in await self._server_keys.keys()])

    async def RotateServerKey(
        self, request: registry_pb2.RotateServerKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RotateServerKeyResponse:
        plan = await self._server_keys.rotate(
            activate_in_seconds=request.activate_in_seconds,
            retire_after_seconds=request.retire_after_seconds,
            actor=current_principal().name,
        )
        reply = registry_pb2.RotateServerKeyResponse(
            next_fingerprint=plan.next_key.fingerprint,
            current_fingerprint=plan.replaced.fingerprint,
            current_retires_at=_timestamp(plan.replaced_retires_at),
        )
        if plan.next_key.activated_at is not None:
            reply.activates_at.CopyFrom(_timestamp(plan.next_key.activated_at))
        return reply

    def _info(self, record: AccessKeyRecord) -> registry_pb2.AccessKeyInfo:
        """The admin view of a key: never its secret."""
        message = registry_pb2.AccessKeyInfo(
            name=record.name,
            key_id=record.key_id,
            zone=record.zone or "",
            created_by=record.created_by,
            revoked_by=record.revoked_by,
            state=STATE_TO_PROTO[record.state(self._access_keys.now())],
            replaced_by_key_id=record.replaced_by or "",
        )
        for field, value in (
            ("created_at", record.created_at),
            ("expires_at", record.expires_at),
            ("revoked_at", record.revoked_at),
        ):
            if value is not None:
                getattr(message, field).CopyFrom(_timestamp(value))
        return message


def _event(event: AccessKeyEvent) -> registry_pb2.AccessKeyEvent:
    message = registry_pb2.AccessKeyEvent(
        revision=event.revision,
        kind=EVENT_KIND_TO_PROTO[event.kind],
        key_id=event.key_id,
        name=event.name,
        zone=event.zone or "",
        psk=event.psk,
        revoked=event.revoked,
        replaced_by_key_id=event.replaced_by,
    )
    if event.expires_at is not None:
        message.expires_at.CopyFrom(_timestamp(event.expires_at))
    return message


def _server_key(key: ServerKey) -> registry_pb2.ServerKey:
    message = registry_pb2.ServerKey(
        public_key=key.public_key,
        private_key=key.private_key,
        state=SERVER_KEY_STATE_TO_PROTO[key.state],
        fingerprint=key.fingerprint,
    )
    if key.activated_at is not None:
        message.activated_at.CopyFrom(_timestamp(key.activated_at))
    if key.retires_at is not None:
        message.retires_at.CopyFrom(_timestamp(key.retires_at))
    return message


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
