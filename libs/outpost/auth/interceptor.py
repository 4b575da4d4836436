"""The server interceptor that authenticates, authorizes and audits every call.

Per call: look up the method's rule (`policy.RULES`; none means refused), read the
bearer secret from the `authorization` metadata, turn it into a principal (service
identities from configured peer secrets, admin tokens from the registry), check the
rule, run the handler with the principal bound (`principals.current_principal()`), and
for changes write an audit row with the outcome.

Refusals end the call here with UNAUTHENTICATED (no or bad credential) or
PERMISSION_DENIED (a principal the rule does not admit), with a message that says what
was missing, and are counted in `outpost_auth_refusals_total`. It sits inside the
error-mapping interceptor, so a handler's domain errors still become statuses there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc
import structlog
from prometheus_client import Counter

from outpost import errors
from outpost.auth import audit, bearer, policy
from outpost.auth.principals import ANONYMOUS, Principal, bind_principal
from outpost.grpc_errors import status_for

log = structlog.get_logger(__name__)

REFUSALS = Counter(
    "outpost_auth_refusals_total",
    "Calls refused before reaching their handler, by reason",
    ["service", "reason"],
)

NO_CREDENTIAL = (
    "this call needs a bearer token ('authorization: Bearer <token>'); outpostctl finds one in its "
    "context (created by `make run`), --token-file FILE or OUTPOST_TOKEN"
)


class AdminTokens(Protocol):
    """Turns an admin token's digest into its principal, or raises Unauthenticated."""

    async def __call__(self, token_digest: bytes) -> Principal: ...


class Authenticator:
    """Service identities from their configured secrets first, then admin tokens."""

    def __init__(self, peers: Mapping[bytes, Principal], admin_tokens: AdminTokens | None) -> None:
        self._peers = dict(peers)
        self._admin_tokens = admin_tokens

    async def authenticate(self, secret: str) -> Principal:
        token_digest = bearer.digest(secret)
        for known, principal in self._peers.items():
            if bearer.same_digest(known, token_digest):
                return principal
        if self._admin_tokens is None:
            raise errors.Unauthenticated("token is not valid here")
        return await self._admin_tokens(token_digest)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Deny by default: every method needs a rule, and the rule's principal."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        service: str,
        trail: audit.SqlAuditTrail | None = None,
        rules: Mapping[str, policy.Rule] = policy.RULES,
        public_listener: bool = False,
    ) -> None:
        self._authenticator = authenticator
        self._service = service
        self._trail = trail
        self._rules = rules
        self._public_listener = public_listener

    @classmethod
    def for_public_listener(cls, service: str) -> AuthInterceptor:
        """The gateway's agent listener: health and the agent stream only, nothing else.

        The agent stream authenticates collectors in its own protocol, so its handler is
        passed through untouched (no cost per message); every other method is refused.
        """
        return cls(Authenticator({}, None), service=service, public_listener=True)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        rule = self._rules.get(method)
        if self._public_listener and rule is not None and rule.access is policy.Access.IN_BAND:
            return handler
        admit = self._admission(method, rule)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, rule, admit, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await admit(context)
                async for item in inner_us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            inner_ss = handler.stream_stream

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await admit(context)
                async for item in inner_ss(requests, context):
                    yield item

            return grpc.stream_stream_rpc_method_handler(
                stream_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _admission(self, method: str, rule: policy.Rule | None) -> Callable[..., Awaitable[Principal]]:
        async def admit(context: grpc.aio.ServicerContext, request: Any = None) -> Principal:
            principal = await self._principal(method, rule, context, request)
            bind_principal(principal)
            return principal

        return admit

    async def _principal(
        self, method: str, rule: policy.Rule | None, context: grpc.aio.ServicerContext, request: Any
    ) -> Principal:
        if rule is None:
            log.error("rpc_without_rule", method=method, advice="add the method to outpost.auth.policy.RULES")
            await self._refuse(
                context=context,
                method=method,
                reason="no_rule",
                code=grpc.StatusCode.PERMISSION_DENIED,
                message=f"{method} has no authorization rule; refused by default",
            )
        assert rule is not None
        if rule.access is policy.Access.PUBLIC:
            return ANONYMOUS
        if self._public_listener:
            await self._refuse(
                context=context,
                method=method,
                reason="not_public",
                code=grpc.StatusCode.PERMISSION_DENIED,
                message=f"{method} is not served on the public agent listener; use the internal admin listener",
            )
        if rule.access is policy.Access.IN_BAND:
            await self._refuse(
                context=context,
                method=method,
                reason="in_band",
                code=grpc.StatusCode.PERMISSION_DENIED,
                message=f"{method} is served only on the agent listener",
            )
        secret = bearer.secret_from_metadata(context.invocation_metadata())
        if secret is None:
            await self._refuse(
                context=context,
                method=method,
                reason="no_credential",
                code=grpc.StatusCode.UNAUTHENTICATED,
                message=NO_CREDENTIAL,
            )
        assert secret is not None
        try:
            principal = await self._authenticator.authenticate(secret)
        except errors.OutpostError as exc:
            reason = "bad_credential" if isinstance(exc, errors.Unauthenticated) else "auth_unavailable"
            await self._refuse(context=context, method=method, reason=reason, code=status_for(exc), message=str(exc))
            raise AssertionError("unreachable") from exc
        if not rule.permits(principal):
            message = (
                f"{principal.name} ({principal.role_label}) may not call {method.rsplit('/', 1)[-1]}: "
                f"it needs {rule.describe()}"
            )
            if rule.audited and self._trail is not None and request is not None:
                # an authenticated principal trying a change it may not make is evidence
                await self._audit(
                    method=method,
                    principal=principal,
                    context=context,
                    request=request,
                    outcome=grpc.StatusCode.PERMISSION_DENIED.name,
                    detail=message,
                )
            await self._refuse(
                context=context,
                method=method,
                reason="permission_denied",
                code=grpc.StatusCode.PERMISSION_DENIED,
                message=message,
                principal=principal.name,
            )
        return principal

    async def _refuse(
        self,
        *,
        context: grpc.aio.ServicerContext,
        method: str,
        reason: str,
        code: grpc.StatusCode,
        message: str,
        principal: str = "",
    ) -> None:
        REFUSALS.labels(self._service, reason).inc()
        log.warning("rpc_refused", method=method, reason=reason, peer=context.peer(), principal=principal)
        await context.abort(code, message)

    def _unary(
        self,
        method: str,
        rule: policy.Rule | None,
        admit: Callable[[grpc.aio.ServicerContext, Any], Awaitable[Principal]],
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        audited = rule is not None and rule.audited and self._trail is not None

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal = await admit(context, request)
            if not audited:
                return await inner(request, context)
            outcome, detail = "ok", ""
            try:
                return await inner(request, context)
            except errors.OutpostError as exc:
                outcome, detail = status_for(exc).name, str(exc)
                raise
            except Exception:
                outcome, detail = "INTERNAL", "internal error; see the service log"
                raise
            finally:
                await self._audit(
                    method=method,
                    principal=principal,
                    context=context,
                    request=request,
                    outcome=outcome,
                    detail=detail,
                )

        return unary

    async def _audit(
        self,
        *,
        method: str,
        principal: Principal,
        context: grpc.aio.ServicerContext,
        request: Any,
        outcome: str,
        detail: str,
    ) -> None:
        assert self._trail is not None
        event = audit.AuditEvent(
            at=datetime.now(UTC),
            service=self._service,
            method=method.rsplit("/", 1)[-1],
            principal=principal.name,
            role=principal.role_label,
            peer=context.peer() or "",
            target=audit.target_of(request),
            outcome=outcome,
            detail=detail,
        )
        log.info(
            "change_audited",
            method=event.method,
            principal=event.principal,
            role=event.role,
            peer=event.peer,
            target=event.target,
            outcome=outcome,
        )
        await self._trail.record(event)
