"""The zone enrollment token RPCs of `RegistryService` (a mixin of `RegistryServicer`).

Admins create, list and revoke tokens (ADR 0022). A token's secret leaves the registry
once, in `CreateEnrollmentTokenResponse.enrollment_token_text`; `EnrollmentTokenInfo`
never carries it (the registry keeps only its digest anyway).
"""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import paging
from outpost.auth.principals import current_principal
from outpost.registry.v1 import registry_pb2
from services.registry.domain.enrollment_tokens import EnrollmentTokenRecord, EnrollmentTokenState
from services.registry.enrollment_tokens import EnrollmentTokens

STATE_TO_PROTO = {
    EnrollmentTokenState.VALID: registry_pb2.ENROLLMENT_TOKEN_STATE_VALID,
    EnrollmentTokenState.EXPIRED: registry_pb2.ENROLLMENT_TOKEN_STATE_EXPIRED,
    EnrollmentTokenState.USED_UP: registry_pb2.ENROLLMENT_TOKEN_STATE_USED_UP,
    EnrollmentTokenState.REVOKED: registry_pb2.ENROLLMENT_TOKEN_STATE_REVOKED,
}


class EnrollmentTokenRpcs:
    _enrollment_tokens: EnrollmentTokens

    async def CreateEnrollmentToken(
        self, request: registry_pb2.CreateEnrollmentTokenRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateEnrollmentTokenResponse:
        record, token = await self._enrollment_tokens.create(
            request.name,
            zone=request.zone,
            uses=request.uses,
            expires_in_seconds=request.expires_in_seconds,
            cidrs=list(request.cidrs),
            actor=current_principal().name,
        )
        return registry_pb2.CreateEnrollmentTokenResponse(
            enrollment_token=self._enrollment_token_info(record),
            enrollment_token_text=token.encode(),
        )

    async def ListEnrollmentTokens(
        self, request: registry_pb2.ListEnrollmentTokensRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListEnrollmentTokensResponse:
        found, next_token = paging.page_of_sorted(
            await self._enrollment_tokens.list_tokens(include_revoked=request.include_revoked),
            lambda t: (t.name, t.created_at, t.token_id),
            (str, datetime, str),
            kind="enrollment_tokens",
            filters={"include_revoked": request.include_revoked},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return registry_pb2.ListEnrollmentTokensResponse(
            enrollment_tokens=[self._enrollment_token_info(t) for t in found], next_page_token=next_token
        )

    async def RevokeEnrollmentToken(
        self, request: registry_pb2.RevokeEnrollmentTokenRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RevokeEnrollmentTokenResponse:
        record = await self._enrollment_tokens.revoke(request.name, actor=current_principal().name)
        return registry_pb2.RevokeEnrollmentTokenResponse(enrollment_token=self._enrollment_token_info(record))

    def _enrollment_token_info(self, record: EnrollmentTokenRecord) -> registry_pb2.EnrollmentTokenInfo:
        """The admin view of a token: never its secret."""
        message = registry_pb2.EnrollmentTokenInfo(
            name=record.name,
            token_id=record.token_id,
            zone=record.zone,
            uses_allowed=record.uses_allowed,
            uses_used=record.uses_used,
            cidrs=list(record.cidrs),
            created_by=record.created_by,
            revoked_by=record.revoked_by,
            state=STATE_TO_PROTO[record.state(self._enrollment_tokens.now())],
        )
        for field, value in (
            ("created_at", record.created_at),
            ("expires_at", record.expires_at),
            ("revoked_at", record.revoked_at),
        ):
            if value is not None:
                getattr(message, field).CopyFrom(_timestamp(value))
        return message


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
