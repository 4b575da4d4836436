"""Credentials for in-process tests: service identities, the bootstrap admin token, and a
channel interceptor that presents whichever one the policy table asks for.

Tests of a service's behaviour call it the way its real callers do: gateway RPCs as the
gateway's identity, admin RPCs with an admin token. `tests/security` tests the refusals.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import grpc

from outpost.auth import bearer, policy
from outpost.auth.service_tokens import ensure_service_tokens

_DIRECTORIES: dict[str, Path] = {}


def credentials_for(database_url: str) -> Credentials:
    """The same secrets for every start of a service on one database (a restart keeps them,
    as a data directory would); removed when the test process exits."""
    if database_url not in _DIRECTORIES:
        directory = Path(tempfile.mkdtemp(prefix="outpost-credentials-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _DIRECTORIES[database_url] = directory
    return Credentials(_DIRECTORIES[database_url])


class Credentials:
    """Secrets a test holds: each service identity and the bootstrap admin token."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.identity_files = ensure_service_tokens(directory / "secrets")
        self.admin_token_file = directory / "admin.token"

    def identity(self, service: str) -> str:
        return bearer.read_secret_file(self.identity_files[service])

    @property
    def person_token_file(self) -> Path:
        """Tests act as the admin "alice" (a token the fixture creates), so the names the
        services record are the authenticated principal's, as in production."""
        return self.directory / "alice.token"

    @property
    def admin(self) -> str:
        if self.person_token_file.exists():
            return bearer.read_secret_file(self.person_token_file)
        return bearer.read_secret_file(self.admin_token_file)

    def secret_for(self, method: str) -> str | None:
        """The secret a real caller of `method` holds: a service's, else the admin token."""
        rule = policy.rule_for(method)
        if rule is not None and rule.access is policy.Access.SERVICES:
            service = "gateway" if "gateway" in rule.allowed_services else sorted(rule.allowed_services)[0]
            return self.identity(service)
        if self.admin_token_file.exists():
            return self.admin
        return None

    def interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        return bearer.aio_interceptors(self.secret_for)
