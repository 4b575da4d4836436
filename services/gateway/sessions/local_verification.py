"""A known collector's handshake, verified by the gateway from its watched cache (ADR 0034).

The registry decides a handshake with the checks of `services.registry.domain.authentication`.
For a registered collector the cache holds everything those checks read, so the gateway
can run them itself — but it only ever **accepts** here. Whatever the registry would refuse,
and whatever the registry would *record* differently from what it holds (a new version,
new sealing algorithms, another access key, an encryption key announced for the first
time, a password slot other than the last one proved), is sent to the registry as before:
it refuses with its own message and keeps its evidence (`explain`, the failed-handshake
ledger), and it records the change. So a refusal's wording never depends on which path
decided, and the registry's record never misses a change. The one outcome a local
decision produces is the registry's own acceptance: the state on record (enabled or
disabled), the canonical name and zone, the revision.

What the registry checks and the gateway does not need to: the nonce. The gateway made it
for this session (`handshake.new_nonce`) and the proof is checked against that nonce and
this session's Noise handshake hash; it is never accepted in another session, so there is
nothing to replay and nothing to remember.

`RegistryLanes` bounds the handshakes this gateway asks the registry about: known
collectors (the cache could not decide: stale, changed, refused) and first contacts each
have their own slots, so a flood of newcomers never starves reconnecting collectors. A
full lane refuses at once with a retry-after rather than queueing into deadline misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from outpost import password_proof
from outpost.agent.v1 import agent_pb2
from outpost.password_proof import PasswordParameters
from outpost.session import handshake
from outpost.session.server import AuthDecision
from services.gateway import metrics
from services.gateway.peers.collector_cache import CachedCollector, StoredPassword

R = agent_pb2.DisconnectReason

MAX_IDENTITY_CHARS = 256
MAX_TRANSPORT_CHARS = 64
ENCRYPTION_KEY_BYTES = 32


@dataclass(frozen=True)
class Deferred:
    """The cache cannot decide: ask the registry. `reason` labels the metric."""

    reason: str
    detail: str = ""


def _parameters(p: agent_pb2.PasswordParameters) -> PasswordParameters:
    return PasswordParameters(p.salt, p.memory_kib, p.time_cost, p.parallelism, p.public_key)


def _accepted(entry: CachedCollector, now: datetime) -> list[StoredPassword]:
    """The credentials a handshake may prove now, current first (the registry's order)."""
    alive = [p for p in entry.passwords if p.accepted(now)]
    return sorted(alive, key=lambda p: p.slot != "current")


def challenge_parameters(
    entry: CachedCollector, public_key: bytes, now: datetime
) -> list[agent_pb2.PasswordParameters]:
    """What the registry's GetPasswordParameters answers: the accepted credentials' parameters
    when the hello presents the key on record, nothing otherwise."""
    if public_key != entry.public_key:
        return []
    return [
        agent_pb2.PasswordParameters(
            salt=p.parameters.salt,
            memory_kib=p.parameters.memory_kib,
            time_cost=p.parameters.time_cost,
            parallelism=p.parameters.parallelism,
            public_key=p.parameters.public_key,
        )
        for p in _accepted(entry, now)
    ]


def proved_slot(
    entry: CachedCollector,
    offered: Sequence[agent_pb2.PasswordParameters],
    proofs: Sequence[bytes],
    transcript: bytes,
    now: datetime,
) -> str | None:
    """Which accepted credential a proof proves ("current" before "previous"); None: none.

    The registry's `passwords.proved_slot`: each offered set is matched to the credential
    with exactly those parameters, every proof is checked, each in constant time."""
    proved: set[str] = set()
    accepted = _accepted(entry, now)
    for offered_params, proof in zip(offered, proofs, strict=False):
        params = _parameters(offered_params)
        for credential in accepted:
            if credential.parameters != params:
                continue
            message = password_proof.auth_message(transcript, params)
            if password_proof.proof_matches(credential.stored_key, message, proof):
                proved.add(credential.slot)
    if "current" in proved:
        return "current"
    return "previous" if proved else None


@dataclass(frozen=True)
class LocalAttempt:
    """What the session knows about one handshake, as the registry would be asked it."""

    hello: agent_pb2.Hello
    proven: bool
    """The Ed25519 proof verified over this session's transcript (own nonce, own binding)."""
    transcript: bytes
    password_parameters: tuple[agent_pb2.PasswordParameters, ...]
    password_proofs: tuple[bytes, ...]
    access_key_id: str
    remote_address: str
    transport: str


def verify(
    entry: CachedCollector, attempt: LocalAttempt, *, server_instance: str, heartbeat_interval: float, now: datetime
) -> tuple[AuthDecision | Deferred, CachedCollector]:
    """Accept a known collector as the registry would, or say why the registry must decide.

    Also returns the entry as the registry's record will be after it accepts this hello
    (the same entry when nothing would change), for `CollectorCache.learned`.
    """
    hello = attempt.hello
    if not attempt.proven:
        return Deferred("refused", "proof"), entry
    too_long = any(
        len(v) > MAX_IDENTITY_CHARS
        for v in (hello.username, hello.bound_server_instance, hello.enrollment_token, attempt.remote_address)
    )
    if too_long or len(attempt.transport) > MAX_TRANSPORT_CHARS:
        return Deferred("refused", "field length"), entry
    if hello.bound_server_instance and hello.bound_server_instance != server_instance:
        return Deferred("refused", "bound"), entry
    if password_proof.from_phc(hello.password_verifier) is None:
        return Deferred("refused", "verifier"), entry  # the registry names what is wrong with it
    if hello.public_key != entry.public_key:
        return Deferred("refused", "key"), entry
    offered_key = hello.encryption_public_key
    if len(offered_key) not in (0, ENCRYPTION_KEY_BYTES) or (
        offered_key and entry.encryption_public_key and offered_key != entry.encryption_public_key
    ):
        return Deferred("refused", "encryption key"), entry
    if hello.name != entry.name or (hello.zone != entry.zone and not (hello.zone == "" and entry.enrolled)):
        return Deferred("refused", "identity"), entry
    slot = ""
    if entry.passwords:
        found = proved_slot(entry, attempt.password_parameters, attempt.password_proofs, attempt.transcript, now)
        if found is None:
            return Deferred("refused", "password"), entry
        slot = found
    recorded = dataclasses.replace(
        entry,
        version=hello.version,
        sealing_algorithms=tuple(hello.sealing_algorithms),
        access_key_id=attempt.access_key_id,
        encryption_public_key=entry.encryption_public_key or offered_key,
        password_last_proved=slot or entry.password_last_proved,
    )
    if recorded != entry:
        return Deferred("changed"), recorded
    decision = AuthDecision(
        accepted=True,
        state=entry.state,
        fingerprint=handshake.fingerprint(entry.public_key),
        heartbeat_interval=heartbeat_interval,
        revision=entry.revision,
        reason=entry.state_reason,
        name=entry.name,
        zone=entry.zone,
    )
    return decision, entry


class LaneFull(Exception):
    def __init__(self, lane: str, retry_after: int) -> None:
        super().__init__(lane)
        self.lane = lane
        self.retry_after = retry_after


class Lane:
    """At most `capacity` calls run, at most `max_waiting` wait; beyond that, LaneFull."""

    def __init__(self, name: str, capacity: int, max_waiting: int, retry_after: int) -> None:
        self.name = name
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(capacity)
        self.running = 0
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.running >= self.capacity and self.waiting >= self.max_waiting:
            metrics.REGISTRY_CALLS_REFUSED.labels(self.name).inc()
            raise LaneFull(self.name, self.retry_after)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        metrics.REGISTRY_CALLS_IN_FLIGHT.labels(self.name).set(self.running)
        try:
            yield
        finally:
            self.running -= 1
            metrics.REGISTRY_CALLS_IN_FLIGHT.labels(self.name).set(self.running)
            self._slots.release()


@dataclass
class RegistryLanes:
    """The gateway's bounds on handshake calls to the registry (see the module docstring).

    Known collectors get most of the slots; first contacts (and collectors the cache has
    never heard of) a smaller share, so they are bounded and cannot starve the others."""

    known: Lane = dataclasses.field(default_factory=lambda: Lane("known", 32, 64, 2))
    first_contact: Lane = dataclasses.field(default_factory=lambda: Lane("first_contact", 8, 16, 5))

    def lane(self, known: bool) -> Lane:
        return self.known if known else self.first_contact


def busy_decision(full: LaneFull) -> AuthDecision:
    return AuthDecision(
        accepted=False,
        refusal=R.DISCONNECT_REASON_UNAVAILABLE,
        message=f"the server is deciding as many handshakes as it can ({full.lane.replace('_', ' ')}); "
        f"retry in {full.retry_after} s",
        retry_after=full.retry_after,
    )
