"""What the registry's integration tests share (this module holds no tests).

`running_registry` starts the real gRPC server in-process on port 0 through
`services.registry.app.build_server` against the `database_url` fixture (SQLite and
PostgreSQL) and hands back a stub on a real channel; give it a `ManualClock` to move the
registry's time instead of sleeping. `FakeCollector` holds a real
Ed25519 key pair and a real argon2id verifier bound to that key, and builds handshakes the way the
collector does (`outpost.session.handshake.sign` over the transcript).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from outpost import password_proof
from outpost.agent.v1 import agent_pb2
from outpost.auth import bearer
from outpost.password_proof import PasswordParameters
from outpost.registration import verifier_input
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session import handshake
from services.registry.app import RegistryConfig, RegistryServer, build_server
from services.registry.registry import utc_now
from tests.auth_support import Credentials, credentials_for

CS = agent_pb2.CollectorState
R = agent_pb2.DisconnectReason
ACCEPTED = registry_pb2.DECISION_ACCEPTED
REFUSED = registry_pb2.DECISION_REFUSED

CANARY_PASSWORD = "canary-Pa55word-7f3e9c"
USERNAME = "svc-outpost"
# Cheap argon2id for speed; the registry accepts any cost within its caps.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
WAIT_SECONDS = 10.0


@dataclass
class RunningRegistry:
    server: RegistryServer
    port: int
    channel: grpc.aio.Channel
    stub: registry_pb2_grpc.RegistryServiceStub
    credentials: Credentials
    clock: Callable[[], datetime] = utc_now
    """The registry's clock: handshakes take their nonce's issue time from it."""

    @property
    def server_instance(self) -> str:
        return self.server.server_instance

    @asynccontextmanager
    async def stub_as(self, secret: str | None) -> AsyncIterator[registry_pb2_grpc.RegistryServiceStub]:
        """A stub on its own channel presenting `secret` (None: no credential at all)."""
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}", interceptors=bearer.aio_bearer(secret))
        try:
            yield registry_pb2_grpc.RegistryServiceStub(channel)
        finally:
            await channel.close()

    async def token(self, name: str, role: str = "admin") -> str:
        """A new admin token `name` with `role`; its secret."""
        reply = await self.stub.CreateToken(
            registry_pb2.CreateTokenRequest(name=name, role=registry_pb2.Role.Value(f"ROLE_{role.upper()}"))
        )
        return str(reply.secret)


class ManualClock:
    """The registry's clock, moved by the test: `advance(61)` is a minute without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@asynccontextmanager
async def running_registry(
    database_url: str, *, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[RunningRegistry]:
    """The registry serving on 127.0.0.1:<free port>, stopped (and its engine disposed) after.

    It knows the gateway's and the scheduler's identities and bootstraps an admin token;
    `stub` presents whichever credential the policy table asks for (as real callers do).
    """
    credentials = credentials_for(database_url)
    config = RegistryConfig(
        database_url=database_url,
        listen="127.0.0.1:0",
        metrics_listen="",
        admin_token_file=credentials.admin_token_file,
        peer_tokens=dict(credentials.identity_files),
    )
    server, port = await build_server(replace(config, **overrides), clock=clock or utc_now)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=credentials.interceptors())
    running = RunningRegistry(
        server, port, channel, registry_pb2_grpc.RegistryServiceStub(channel), credentials, clock or utc_now
    )
    try:
        if not credentials.person_token_file.exists():
            bearer.write_secret_file(credentials.person_token_file, await running.token("alice", "admin"))
        yield running
    finally:
        await channel.close()
        await server.stop(0)


class FakeCollector:
    """A collector's identity: key pair, credentials, and handshakes built from them."""

    def __init__(
        self,
        name: str,
        *,
        password: str = CANARY_PASSWORD,
        username: str = USERNAME,
        zone: str = "dmz",
        version: str = "1.2.3",
        instance_uid: str | None = None,
        key: Ed25519PrivateKey | None = None,
        bound_server_instance: str = "",
        verifier: str | None = None,
        enrollment_token: str = "",
    ) -> None:
        self.name = name
        self.enrollment_token = enrollment_token
        self.username = username
        self.zone = zone
        self.version = version
        self.instance_uid = instance_uid or str(uuid.uuid4())
        self.key = key or Ed25519PrivateKey.generate()
        self.bound_server_instance = bound_server_instance
        self.password = password
        """What its password file holds: every handshake proves it (ADR 0025)."""
        self.verifier = verifier if verifier is not None else self.verifier_for(password)

    def verifier_for(self, password: str) -> str:
        """The verifier the collector computes: argon2id of `password` bound to its key (ADR 0013)."""
        return FAST_HASHER.hash(verifier_input(username=self.username, public_key=self.public_key, password=password))

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        return handshake.fingerprint(self.public_key)

    def hello(self) -> agent_pb2.Hello:
        return agent_pb2.Hello(
            protocol_version=1,
            instance_uid=self.instance_uid,
            name=self.name,
            zone=self.zone,
            version=self.version,
            bound_server_instance=self.bound_server_instance,
            public_key=self.public_key,
            username=self.username,
            password_verifier=self.verifier,
            enrollment_token=self.enrollment_token,
        )

    def request(
        self,
        server_instance: str,
        *,
        nonce: bytes | None = None,
        remote_address: str = "198.51.100.7:50123",
        gateway_id: str = "gw-1",
        session_id: str | None = None,
        transport: str = "grpc",
        issued_at: datetime | None = None,
        password_parameters: Sequence[agent_pb2.PasswordParameters] = (),
        password: str | None = None,
    ) -> registry_pb2.AuthenticateCollectorRequest:
        """A correctly signed handshake over a fresh nonce (issued now, or at `issued_at`),
        as a gateway forwards it, with a SCRAM proof of `password` (default: its own) for
        each offered parameter set (ADR 0025)."""
        hello = self.hello()
        issued_ms = int((issued_at or utc_now()).timestamp() * 1000)
        nonce = nonce or handshake.new_nonce(issued_ms)
        transcript = handshake.transcript(hello, nonce, server_instance)
        return registry_pb2.AuthenticateCollectorRequest(
            hello=hello,
            nonce=nonce,
            signature=handshake.sign(self.key, hello, nonce, server_instance),
            remote_address=remote_address,
            gateway_id=gateway_id,
            session_id=session_id or uuid.uuid4().hex,
            transport=transport,
            password_parameters=password_parameters,
            password_proofs=[self.proof(p, transcript, password) for p in password_parameters],
        )

    def proof(self, offered: agent_pb2.PasswordParameters, transcript: bytes, password: str | None = None) -> bytes:
        params = PasswordParameters(
            offered.salt, offered.memory_kib, offered.time_cost, offered.parallelism, offered.public_key
        )
        salted = password_proof.salted_password(
            self.password if password is None else password, username=self.username, params=params
        )
        return password_proof.client_proof(salted, password_proof.auth_message(transcript, params))

    async def password_parameters(self, registry: RunningRegistry) -> list[agent_pb2.PasswordParameters]:
        """What the gateway's Challenge would offer this collector (GetPasswordParameters)."""
        response = await registry.stub.GetPasswordParameters(
            registry_pb2.GetPasswordParametersRequest(instance_uid=self.instance_uid, public_key=self.public_key)
        )
        return list(response.parameters)

    async def authenticate(
        self, registry: RunningRegistry, **kwargs: Any
    ) -> registry_pb2.AuthenticateCollectorResponse:
        """The handshake as a gateway drives it: parameters fetched after the hello, then the proof."""
        kwargs.setdefault("issued_at", registry.clock())
        if "password_parameters" not in kwargs:
            kwargs["password_parameters"] = await self.password_parameters(registry)
        request = self.request(registry.server_instance, **kwargs)
        response: registry_pb2.AuthenticateCollectorResponse = await registry.stub.AuthenticateCollector(request)
        return response


async def announce(registry: RunningRegistry, name: str, **kwargs: Any) -> FakeCollector:
    """A new collector that has announced itself and waits as pending."""
    collector = FakeCollector(name, **kwargs)
    response = await collector.authenticate(registry)
    assert response.decision == ACCEPTED, response.message
    return collector


async def register(
    registry: RunningRegistry,
    name: str,
    *,
    password: str = CANARY_PASSWORD,
    username: str = USERNAME,
    enable: bool = True,
) -> registry_pb2.Collector:
    response = await registry.stub.RegisterCollector(
        registry_pb2.RegisterCollectorRequest(name=name, username=username, password=password, enable=enable)
    )
    collector: registry_pb2.Collector = response.collector
    return collector


async def get(registry: RunningRegistry, name: str) -> registry_pb2.Collector:
    response = await registry.stub.GetCollector(registry_pb2.GetCollectorRequest(name=name))
    collector: registry_pb2.Collector = response.collector
    return collector


class Watch:
    """One WatchCollectors stream; every read has a deadline."""

    def __init__(self, registry: RunningRegistry, since_revision: int = 0) -> None:
        self.call = registry.stub.WatchCollectors(registry_pb2.WatchCollectorsRequest(since_revision=since_revision))

    async def next(self, timeout: float = WAIT_SECONDS) -> registry_pb2.CollectorEvent:
        async with asyncio.timeout(timeout):
            event = await self.call.read()
        assert event is not grpc.aio.EOF, "watch ended"
        return event

    async def next_change(self, timeout: float = WAIT_SECONDS) -> registry_pb2.CollectorEvent:
        """The next event that is not a bookmark."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                if event.kind != registry_pb2.EVENT_KIND_BOOKMARK:
                    return event

    def cancel(self) -> None:
        self.call.cancel()


@asynccontextmanager
async def watching(registry: RunningRegistry, since_revision: int = 0) -> AsyncIterator[Watch]:
    watch = Watch(registry, since_revision)
    try:
        yield watch
    finally:
        watch.cancel()


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = WAIT_SECONDS, what: str = "") -> None:
    """Wait until `check()` is true, re-checking briefly; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.05)
