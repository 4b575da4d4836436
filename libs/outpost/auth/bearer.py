"""Bearer secrets: how they are made, stored (SHA-256 only) and carried in gRPC metadata.

A secret is 32 random bytes, URL-safe base64, behind the prefix `outpost_` (so a secret
scanner can find a leaked one). It is sent as `authorization: Bearer <secret>` (RFC 6750
in gRPC metadata, the convention grpcurl and every gRPC gateway understand). The server
keeps only its SHA-256: 256 random bits need no slow hash, and a stolen table of
digests lets no one call anything.

Bearer secrets are as good as passwords on the wire: off loopback, listeners need TLS
(`docs/security.md`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc

PREFIX = "outpost_"
SECRET_BYTES = 32
MAX_SECRET_CHARS = 256
METADATA_KEY = "authorization"


def new_secret() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def digest(secret: str) -> bytes:
    """What is stored and compared: SHA-256 of the secret's text."""
    return hashlib.sha256(secret.encode()).digest()


def same_digest(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def secret_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The bearer secret of a call's `authorization` metadata; None when absent or malformed."""
    for key, value in metadata or ():
        if key.lower() != METADATA_KEY:
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        scheme, _, secret = text.strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or len(secret) > MAX_SECRET_CHARS:
            return None
        return secret
    return None


def read_secret_file(path: Path) -> str:
    """The secret in `path` (one line); OSError/ValueError with a message naming the file."""
    text = path.read_text().strip()
    if not text or len(text) > MAX_SECRET_CHARS or any(c.isspace() for c in text):
        raise ValueError(f"{path} does not hold one token on one line")
    return text


def write_secret_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` with mode 0600, atomically (never a half-written token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (secret + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _with_token(metadata: Any, secret: str) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in (metadata or ()) if k.lower() != METADATA_KEY]
    return [*kept, (METADATA_KEY, f"Bearer {secret}")]


class _AioBearer:
    """Adds `authorization: Bearer …` to calls of a grpc.aio channel.

    `secret_for(method)` picks the secret per method (one fixed secret for a service;
    tests pick by the policy table); None sends the call without one. grpc.aio files an
    interceptor under the first call kind it implements only, so each kind has its own
    class below and `aio_interceptors` returns one of each.
    """

    def __init__(self, secret_for: Callable[[str], str | None]) -> None:
        self._secret_for = secret_for

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        secret = self._secret_for(method)
        if secret is None:
            return details
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, secret),
            details.credentials,
            details.wait_for_ready,
        )


class _UnaryUnary(_AioBearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_AioBearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_AioBearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_AioBearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


def aio_interceptors(secret_for: Callable[[str], str | None]) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a grpc.aio channel presenting `secret_for(method)` on every call kind."""
    return [kind(secret_for) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def aio_bearer(secret: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a grpc.aio channel that presents `secret` (none when None)."""
    if secret is None:
        return []
    return aio_interceptors(lambda _method: secret)


class _SyncDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class SyncBearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """The same for a synchronous channel (outpostctl)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _SyncDetails(details, _with_token(details.metadata, self._secret))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)
