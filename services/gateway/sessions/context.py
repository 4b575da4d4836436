"""What every session loop is given: the transport's stream and the gateway's shared parts.

Kept apart from the loop itself (`agent_session.py`) so transports, the app and the loop
import one small module, and the loop's file holds only the loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.gateway.access_keys import AccessKeyCache, ServerKeys
from services.gateway.peers.collector_cache import CollectorCache
from services.gateway.peers.registry_client import RegistryClient
from services.gateway.sessions.admission import Admission
from services.gateway.sessions.hub import SessionHub
from services.gateway.sessions.local_verification import RegistryLanes
from services.gateway.sessions.reports import SessionReporter
from services.gateway.sessions.run_routing import Dispatcher
from services.gateway.sessions.sealed import SealingPolicy
from services.gateway.sessions.timer_wheel import TimerWheel
from services.gateway.sessions.work import WorkContext
from services.gateway.transports.client_address import TrustedProxies


class AgentStream(Protocol):
    """What a transport provides: one envelope per message, in both directions."""

    transport: str
    remote_address: str

    async def recv(self) -> bytes | None:
        """The next envelope's bytes; None when the peer closed. May raise RemoteProtocolError."""

    async def send(self, data: bytes) -> None: ...

    async def close(self, reason: str) -> None:
        """Close the connection; `reason` is for people (WebSocket close reason)."""


class Shutdown:
    """Delivered to every session when the gateway drains."""


@dataclass
class GatewayContext:
    """What every session needs from the gateway process; built once in app.py."""

    gateway_id: str
    server_instance: str
    heartbeat_interval: float
    handshake_timeout: float
    registry: RegistryClient
    hub: SessionHub
    reporter: SessionReporter
    admission: Admission
    work: WorkContext
    dispatcher: Dispatcher
    # The access keys a sealed handshake checks (the registry's watch keeps them current)
    # and the server's Noise static key(s) it proves (read from the registry at start).
    # app.py passes the ones its watch fills; the empty defaults grant nothing.
    access_keys: AccessKeyCache = dataclasses.field(default_factory=AccessKeyCache)
    server_keys: ServerKeys = dataclasses.field(default_factory=ServerKeys)
    # Registry handshake calls in flight from this gateway, per lane (known collectors, first
    # contacts; ADR 0034). Beyond the registry's capacity more concurrency only makes every
    # call miss its deadline (bench/registry_handshakes.py): a bound keeps the registry
    # working at capacity, a few wait here, and the rest are refused with a retry-after.
    registry_lanes: RegistryLanes = dataclasses.field(default_factory=RegistryLanes)
    # The watched cache of registered collectors (ADR 0034): known collectors' handshakes are
    # verified here without a registry call while it is fresh. None: every handshake asks.
    collector_cache: CollectorCache | None = None
    # Sealed sessions (ADR 0019): required on every transport; whether first contact is allowed.
    sealing: SealingPolicy = dataclasses.field(default_factory=SealingPolicy)
    # Who may name the collector's address (ADR 0026): forwarded headers and PROXY
    # protocol headers are believed from these peers only; empty: from no one.
    trusted_proxies: TrustedProxies = dataclasses.field(default_factory=TrustedProxies)
    # Once set, new connections are told to go elsewhere and every session closes after
    # the frame it is handling (ADR 0010, "Drain and failover").
    draining: bool = False
    # Every streaming session's `deliver`, handshakes included (the hub holds accepted ones
    # only): the drain tells each of them, and waits until this is empty.
    connections: dict[str, Callable[[object], None]] = dataclasses.field(default_factory=dict)
    # Every streaming session's deadline (handshake, then liveness) behind one loop timer:
    # an idle session owns no timer or waiting task of its own (issue 13, item 2).
    timers: TimerWheel = dataclasses.field(default_factory=TimerWheel)
