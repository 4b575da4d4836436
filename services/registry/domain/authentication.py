"""Deciding a collector handshake: accept (and in which state) or refuse (and why).

The checks run in this order, cheapest and most fundamental first:

1. the Ed25519 proof over the transcript (hello fields + the gateway's fresh nonce +
   this server instance) verifies — checked at the wire edge, passed in as `proof_valid`;
1b. the nonce was issued within `NONCE_MAX_AGE` of the registry's clock (its first 8
   bytes, see `outpost.session.handshake`), and — checked against the database, after
   every check here passed — was never accepted before: a captured handshake replays
   neither later nor twice;
2. the collector is not bound to another server instance;
3. its password verifier is a well-formed argon2id string with capped costs, and its
   encryption public key, if any, is a 32-byte X25519 key;
4. a known collector (same `instance_uid`) presents the public key on record, and the
   encryption key on record (a collector that had none may announce one, once: the
   proof covers it, so only the identity key's holder can);
4c. a registered collector with a service password on record proves it: one SCRAM proof
   per offered credential, bound to this handshake's transcript (`check_password`, ADR 0025);
4b. and the name and zone on record: a collector's name and zone are fixed when it first
   announces itself and, once registered, are the admin's decision. A hello that says
   otherwise is refused with both values named, never applied (a collector restarted
   with `--zone prod` must not move itself into prod's runs, inventory and credentials).
   This holds for pending collectors too: what the admin reviews in the pending list is
   what they register; a collector installed with a wrong name or zone is removed and
   announces itself again;
5. an unknown collector does not ask for a name another collector already holds
   (the first one keeps it; the newcomer is recorded as a name conflict for admins);
6. otherwise an unknown collector is stored as pending, within the pending bounds
   (`pending_limits`: in all and per source network) — unless its hello carries an
   enrollment token (ADR 0022): then it is registered and enabled in the token's zone
   when the token admits it (`enrollment_tokens.check_enrollment`), and refused with
   ENROLLMENT_REFUSED otherwise, never stored as pending. A pending collector that comes
   back with a token is enrolled the same way; a registered one ignores the token.

Everything here is pure: `registry.Registry` reads the rows these functions need and
writes what they decide, in one transaction.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from outpost.password_proof import PasswordParameters
from services.registry.domain import passwords
from services.registry.domain.collectors import Collector, CollectorState, SpoolStatus
from services.registry.domain.verifier import verifier_problem

MAX_IDENTITY_CHARS = 256
MAX_TRANSPORT_CHARS = 64
ENCRYPTION_KEY_BYTES = 32
MAX_SEALING_ALGORITHMS = 8
MAX_SEALING_ALGORITHM_CHARS = 64
"""Bounds on the sealing algorithms a hello lists (the same as `outpost.sealing`'s)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NONCE_MAX_AGE = timedelta(seconds=120)
"""A nonce older than this is refused. It must exceed the gateways' handshake timeout
(10 s by default) plus the time a handshake waits for the registry, with room for clock
differences between gateways and registry."""
NONCE_MAX_AHEAD = timedelta(seconds=30)
"""A nonce issued this far after the registry's clock is tolerated (gateway clocks ahead)."""


class Refusal(enum.Enum):
    AUTHENTICATION_FAILED = "authentication_failed"
    BOUND_TO_OTHER_INSTANCE = "bound_to_other_instance"
    NAME_CONFLICT = "name_conflict"
    PENDING_LIMIT = "pending_limit"
    """Too many collectors wait as pending (see `pending_limits`); checked on first contact."""
    IDENTITY_CHANGED = "identity_changed"
    ENROLLMENT_REFUSED = "enrollment_refused"
    """The hello's enrollment token did not admit it (`enrollment_tokens.check_enrollment`)."""


@dataclass(frozen=True)
class Hello:
    """Who a collector says it is (the identity fields of the agent protocol's Hello)."""

    instance_uid: str
    name: str
    zone: str
    version: str
    bound_server_instance: str
    public_key: bytes
    username: str
    password_verifier: str
    encryption_public_key: bytes = b""
    spool: SpoolStatus | None = None
    """The spool as the collector starts the session; None from versions before ADR 0010."""
    sealing_algorithms: tuple[str, ...] = ()
    """Sealed-secret algorithms the collector opens (ADR 0020); empty from versions before it."""
    enrollment_token: str = dataclasses.field(default="", repr=False)
    """A zone enrollment token (ADR 0022), sent only while the collector is not registered."""


@dataclass(frozen=True)
class AuthAttempt:
    """One handshake a gateway asks about, with where the session came from."""

    hello: Hello
    proof_valid: bool
    remote_address: str
    gateway_id: str
    session_id: str
    transport: str
    nonce: bytes = b""
    """The gateway's challenge nonce the proof covers; single use."""
    nonce_issued_at: datetime = EPOCH
    """The issue time the nonce carries (`outpost.session.handshake.nonce_issued_at_ms`)."""
    access_key_id: str = ""
    """The access key the gateway's sealed handshake proved (empty: an unsealed session)."""
    transcript: bytes = b""
    """The handshake transcript the Ed25519 proof covers: the service-password proofs' AuthMessage
    is built over it (ADR 0025)."""
    password_proofs: tuple[tuple[PasswordParameters, bytes], ...] = ()
    """Each parameter set the Challenge offered, with the collector's ClientProof for it."""


@dataclass(frozen=True)
class Refused:
    refusal: Refusal
    message: str
    retry_after_seconds: int = 0
    """When set: seconds before another attempt can succeed."""


@dataclass(frozen=True)
class AuthOutcome:
    """The decision, and what the gateway tells the collector and its watch cursor."""

    name: str
    instance_uid: str
    fingerprint: str
    zone: str = ""
    """The zone on record (the admin's decision); empty when refused before one was known."""
    refused: Refused | None = None
    state: CollectorState | None = None
    revision: int = 0
    state_reason: str = ""
    state_changed_by: str = ""
    created: bool = False

    @property
    def accepted(self) -> bool:
        return self.refused is None


def attempt_problem(attempt: AuthAttempt) -> str | None:
    """A request the gateway should never have sent; a caller bug, not a refusal."""
    hello = attempt.hello
    for field in ("instance_uid", "name"):
        if not getattr(hello, field).strip():
            return f"hello.{field} is required"
    for field in ("instance_uid", "name", "zone", "version", "username", "bound_server_instance"):
        if len(getattr(hello, field)) > MAX_IDENTITY_CHARS:
            return f"hello.{field} is longer than {MAX_IDENTITY_CHARS} characters"
    if len(hello.enrollment_token) > MAX_IDENTITY_CHARS:
        return f"hello.enrollment_token is longer than {MAX_IDENTITY_CHARS} characters"
    return session_fields_problem(
        remote_address=attempt.remote_address,
        gateway_id=attempt.gateway_id,
        session_id=attempt.session_id,
        transport=attempt.transport,
    )


def session_fields_problem(**fields: str) -> str | None:
    """Where-a-session-is fields from gateways must fit the columns that keep them."""
    for field, value in fields.items():
        limit = MAX_TRANSPORT_CHARS if field == "transport" else MAX_IDENTITY_CHARS
        if len(value) > limit:
            return f"{field} is longer than {limit} characters"
    return None


def check_handshake(attempt: AuthAttempt, server_instance: str) -> Refused | None:
    """Steps 1-3: what can be decided without reading the database."""
    hello = attempt.hello
    if not attempt.proof_valid:
        return Refused(Refusal.AUTHENTICATION_FAILED, "handshake proof did not verify")
    bound = hello.bound_server_instance
    if bound and bound != server_instance:
        return Refused(
            Refusal.BOUND_TO_OTHER_INSTANCE,
            f"collector '{hello.name}' is bound to server instance {bound}, "
            f"not {server_instance}; reinstall it (fresh data directory) to move it",
        )
    problem = verifier_problem(hello.password_verifier)
    if problem is not None:
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"collector '{hello.name}' sent an unacceptable {problem}",
        )
    key_bytes = len(hello.encryption_public_key)
    if key_bytes not in (0, ENCRYPTION_KEY_BYTES):
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"collector '{hello.name}' sent a {key_bytes}-byte encryption public key; "
            f"an X25519 key has {ENCRYPTION_KEY_BYTES}",
        )
    algorithms = hello.sealing_algorithms
    if len(algorithms) > MAX_SEALING_ALGORITHMS or any(
        not a or len(a) > MAX_SEALING_ALGORITHM_CHARS for a in algorithms
    ):
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"collector '{hello.name}' listed {len(algorithms)} sealing algorithms; at most "
            f"{MAX_SEALING_ALGORITHMS} ids of 1 to {MAX_SEALING_ALGORITHM_CHARS} characters are accepted",
        )
    return None


def check_nonce_fresh(attempt: AuthAttempt, now: datetime) -> Refused | None:
    """Step 1b (time): the nonce the proof covers was issued within the window around `now`."""
    age = now - attempt.nonce_issued_at
    if age > NONCE_MAX_AGE:
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"handshake nonce was issued {int(age.total_seconds())} s ago (at most "
            f"{int(NONCE_MAX_AGE.total_seconds())} s are accepted): a replayed handshake, or a gateway whose "
            "clock is behind the registry's",
        )
    if -age > NONCE_MAX_AHEAD:
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"handshake nonce was issued {int(-age.total_seconds())} s in the future: a gateway whose clock is "
            "ahead of the registry's",
        )
    return None


def replayed_nonce() -> Refused:
    """Step 1b (once): the nonce was accepted before."""
    return Refused(
        Refusal.AUTHENTICATION_FAILED,
        "handshake nonce was already used: a replayed handshake (each challenge is good for one proof)",
    )


def nonce_kept_until(attempt: AuthAttempt, now: datetime) -> datetime:
    """How long an accepted nonce must be remembered: until it would be refused as stale."""
    return max(attempt.nonce_issued_at, now) + NONCE_MAX_AGE


def check_known_key(attempt: AuthAttempt, known: Collector) -> Refused | None:
    """Step 4: an instance_uid is bound to the keys it first announced, forever.

    A hello without an encryption key is not a different key: an older collector
    version (a rollback) sends none, keeps its identity, and the key on record stays.
    """
    if attempt.hello.public_key != known.public_key:
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"public key does not match the one on record for collector '{known.name}'",
        )
    offered = attempt.hello.encryption_public_key
    if offered and known.encryption_public_key and offered != known.encryption_public_key:
        return Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"encryption public key does not match the one on record for collector '{known.name}'; "
            "restore its encryption.key, or remove it and register the reinstalled collector",
        )
    return None


def check_password(
    attempt: AuthAttempt, known: Collector, credentials: list[passwords.PasswordCredential], now: datetime
) -> tuple[Refused | None, passwords.Slot | None]:
    """Step 4c: a registered collector with a service password on record proves one accepted
    now (ADR 0025); which one it proved. No credential on record: nothing to prove."""
    if known.state is CollectorState.PENDING or not credentials:
        return None, None
    slot = passwords.proved_slot(credentials, attempt.password_proofs, attempt.transcript, now)
    if slot is not None:
        return None, slot
    hint = (
        " (it sent no password proof: upgrade it to a version that proves its service password)"
        if not attempt.password_proofs
        else "; fix its --password-file (after `collectors set-password`, the old one is accepted only until the "
        "overlap ends)"
    )
    return (
        Refused(
            Refusal.AUTHENTICATION_FAILED,
            f"service password does not match the one on record for collector '{known.name}'{hint}",
        ),
        None,
    )


def check_known_identity(attempt: AuthAttempt, known: Collector) -> Refused | None:
    """Step 4b: the name and zone on record are the collector's; a hello cannot change them."""
    hello = attempt.hello
    where = "is registered" if known.registered_at is not None else "announced itself"
    if hello.name != known.name:
        return Refused(
            Refusal.IDENTITY_CHANGED,
            f"collector '{known.name}' {where} under the name '{known.name}'; this hello says '{hello.name}' "
            f"— an admin decides names: restart it with --name {known.name}, or remove it and register "
            "the reinstalled collector",
        )
    # A collector enrolled by a token may leave its zone to the registry (ADR 0022): an empty
    # zone moves it nowhere, the zone on record stays what the token decided.
    if hello.zone != known.zone and not (hello.zone == "" and known.enrolled_by):
        return Refused(
            Refusal.IDENTITY_CHANGED,
            f"collector '{known.name}' {where} in zone '{known.zone}'; this hello says '{hello.zone}' "
            f"— an admin decides zones: restart it with --zone {known.zone}, or remove it and register "
            "the reinstalled collector",
        )
    return None


def check_name_free(attempt: AuthAttempt, holder: Collector | None) -> Refused | None:
    """Step 5: the first collector to claim a name keeps it until an admin removes it."""
    if holder is None or holder.instance_uid == attempt.hello.instance_uid:
        return None
    return Refused(
        Refusal.NAME_CONFLICT,
        f"name '{attempt.hello.name}' is already held by collector {holder.fingerprint}; "
        "an admin must remove it first, or install this one under another name",
    )
