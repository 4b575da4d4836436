"""Map domain errors to gRPC status codes, in one place: a server interceptor.

Servicers raise `OutpostError` subclasses and never touch status codes. A database
that is unreachable right now (`db_failures`) becomes UNAVAILABLE, so callers retry.
Other unexpected exceptions become INTERNAL with a generic message; the traceback goes
to the log only. A message longer than `MAX_DETAILS_CHARS` is cut (domain code quotes
input with `errors.brief`; this is the backstop), so a status always fits its trailer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog

from outpost import errors
from outpost.db_failures import database_unavailable

log = structlog.get_logger(__name__)

STATUS_BY_ERROR: dict[type[errors.OutpostError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


MAX_DETAILS_CHARS = 2000


def details_for(exc: errors.OutpostError) -> str:
    """The status message: the error's text, cut to `MAX_DETAILS_CHARS`."""
    text = str(exc)
    if len(text) <= MAX_DETAILS_CHARS:
        return text
    return text[: MAX_DETAILS_CHARS - 30] + f"… ({len(text):,} characters in all)"


def status_for(exc: errors.OutpostError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return grpc.StatusCode.UNKNOWN


ERROR_BY_STATUS = {code: cls for cls, code in STATUS_BY_ERROR.items()}


def error_from_rpc(exc: grpc.aio.AioRpcError) -> errors.OutpostError:
    """Turn a peer's status back into the domain error a client should handle."""
    cls = ERROR_BY_STATUS.get(exc.code(), errors.Unavailable)
    if exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        cls = errors.Unavailable
    return cls(exc.details() or exc.code().name)


RETRYABLE_STATUSES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
"""The statuses after which the same call may succeed later: `peer_error` makes them `Unavailable`."""


def peer_error(exc: grpc.aio.AioRpcError) -> errors.OutpostError:
    """A peer's status as the error its caller branches on, exact about retrying.

    Unlike `error_from_rpc` (which, when in doubt, says `Unavailable`), only
    `RETRYABLE_STATUSES` become `Unavailable`; a status with a domain error of its own
    becomes that error, and any other (INTERNAL, UNKNOWN, CANCELLED, ...) `PeerFailed`.
    The error carries the status name and the peer's message (`status`, `details`) for logs.
    """
    code = exc.code()
    cls = errors.Unavailable if code in RETRYABLE_STATUSES else ERROR_BY_STATUS.get(code, errors.PeerFailed)
    details = exc.details() or ""
    error = cls(details or code.name)
    error.status = code.name
    error.details = details
    return error


async def _abort_unexpected(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """UNAVAILABLE for a database outage (retry helps), INTERNAL for anything else (a bug)."""
    reason = database_unavailable(exc)
    if reason is not None:
        log.warning("rpc_unavailable", method=method, reason=reason)
        await context.abort(grpc.StatusCode.UNAVAILABLE, reason)
    log.exception("rpc_failed", method=method)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see server log")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wrap unary handlers so domain errors become statuses with actionable messages."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner(request, context)
                except errors.OutpostError as exc:
                    await context.abort(status_for(exc), details_for(exc))
                except grpc.aio.AbortError:
                    raise  # an inner interceptor ended the call with its own status
                except Exception as exc:
                    await _abort_unexpected(context, method, exc)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except errors.OutpostError as exc:
                    await context.abort(status_for(exc), details_for(exc))
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _abort_unexpected(context, method, exc)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
