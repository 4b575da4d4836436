"""A known collector's handshake checked from the cache (ADR 0034): accept as the registry would, or defer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from outpost import password_proof
from outpost.password_proof import PasswordParameters
from outpost.session import handshake
from outpost.session.server import AuthDecision, ServerState
from services.gateway.peers.collector_cache import CachedCollector, StoredPassword
from services.gateway.sessions import local_verification as local
from tests.unit.collector_identity import NONCE, PUBLIC_KEY, SERVER_INSTANCE, make_hello

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PASSWORD = "the-service-Pa55word"
OLD_PASSWORD = "the-old-Pa55word"
VERIFIER = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43


def credential(password: str, slot: str, salt: bytes, until: datetime | None = None) -> StoredPassword:
    params = PasswordParameters(salt, 8, 1, 1, PUBLIC_KEY)
    salted = password_proof.salted_password(password, username="svc-edge-7", params=params)
    return StoredPassword(slot, params, password_proof.stored_key(salted), until)


CURRENT = credential(PASSWORD, "current", b"s" * 16)
PREVIOUS = credential(OLD_PASSWORD, "previous", b"p" * 16, NOW + timedelta(minutes=5))


def entry(**overrides: object) -> CachedCollector:
    hello = make_hello()
    fields: dict[str, object] = {
        "instance_uid": hello.instance_uid,
        "name": hello.name,
        "zone": hello.zone,
        "state": ServerState.ENABLED,
        "state_reason": "registered by admin",
        "revision": 7,
        "public_key": PUBLIC_KEY,
        "encryption_public_key": b"",
        "enrolled": False,
        "passwords": (CURRENT, PREVIOUS),
        "version": hello.version,
        "sealing_algorithms": (),
        "access_key_id": "ak_1",
        "password_last_proved": "current",
    }
    fields.update(overrides)
    return CachedCollector(**fields)  # type: ignore[arg-type]


def attempt(
    password: str = PASSWORD, cached: CachedCollector | None = None, **hello_fields: object
) -> local.LocalAttempt:
    hello = make_hello(password_verifier=VERIFIER, **hello_fields)
    transcript = handshake.transcript(hello, NONCE, SERVER_INSTANCE)
    offered = local.challenge_parameters(cached or entry(), hello.public_key, NOW)
    proofs = []
    for p in offered:
        params = PasswordParameters(p.salt, p.memory_kib, p.time_cost, p.parallelism, p.public_key)
        salted = password_proof.salted_password(password, username=hello.username, params=params)
        proofs.append(password_proof.client_proof(salted, password_proof.auth_message(transcript, params)))
    return local.LocalAttempt(
        hello=hello,
        proven=True,
        transcript=transcript,
        password_parameters=tuple(offered),
        password_proofs=tuple(proofs),
        access_key_id="ak_1",
        remote_address="10.0.0.1:5000",
        transport="tcp",
    )


def decide(cached: CachedCollector, tried: local.LocalAttempt) -> AuthDecision | local.Deferred:
    outcome, _ = local.verify(cached, tried, server_instance=SERVER_INSTANCE, heartbeat_interval=30.0, now=NOW)
    return outcome


def test_a_known_collector_is_accepted_with_the_registrys_outcome() -> None:
    outcome = decide(entry(), attempt())
    assert isinstance(outcome, AuthDecision) and outcome.accepted
    assert (outcome.state, outcome.revision, outcome.name, outcome.zone) == (
        ServerState.ENABLED,
        7,
        "edge-7",
        "dc-north",
    )
    assert outcome.fingerprint == handshake.fingerprint(PUBLIC_KEY)
    disabled = decide(entry(state=ServerState.DISABLED), attempt())
    assert isinstance(disabled, AuthDecision) and disabled.state is ServerState.DISABLED


def test_the_challenge_offers_what_the_registry_would() -> None:
    offered = local.challenge_parameters(entry(), PUBLIC_KEY, NOW)
    assert [p.salt for p in offered] == [CURRENT.parameters.salt, PREVIOUS.parameters.salt]
    assert [p.salt for p in local.challenge_parameters(entry(), PUBLIC_KEY, NOW + timedelta(hours=1))] == [
        CURRENT.parameters.salt
    ]
    assert local.challenge_parameters(entry(), b"x" * 32, NOW) == []


def test_everything_the_registry_would_refuse_is_left_to_the_registry() -> None:
    cached = entry()
    cases = {
        "proof": dataclasses.replace(attempt(), proven=False),
        "password": attempt(password="wrong"),
        "key": attempt(public_key=b"k" * 32),
        "identity": attempt(zone="prod"),
        "bound": attempt(bound_server_instance="another-server"),
        "verifier": dataclasses.replace(attempt(), hello=make_hello(password_verifier="not-a-verifier")),
    }
    for detail, tried in cases.items():
        outcome = decide(cached, tried)
        assert outcome == local.Deferred("refused", detail), detail
    # After the overlap the previous password proves nothing here either.
    late = local.verify(
        entry(password_last_proved="previous"),
        attempt(OLD_PASSWORD),
        server_instance=SERVER_INSTANCE,
        heartbeat_interval=30.0,
        now=NOW + timedelta(hours=1),
    )[0]
    assert late == local.Deferred("refused", "password")


def test_what_the_registry_would_record_differently_goes_to_it_once() -> None:
    cached = entry()
    outcome, learned = local.verify(
        cached, attempt(version="0.2.0"), server_instance=SERVER_INSTANCE, heartbeat_interval=30.0, now=NOW
    )
    assert outcome == local.Deferred("changed") and learned.version == "0.2.0"
    outcome = decide(learned, attempt(version="0.2.0"))
    assert isinstance(outcome, AuthDecision)
    # The previous password during the overlap: first the registry (it records the slot), then locally.
    outcome, learned = local.verify(
        cached, attempt(OLD_PASSWORD), server_instance=SERVER_INSTANCE, heartbeat_interval=30.0, now=NOW
    )
    assert outcome == local.Deferred("changed") and learned.password_last_proved == "previous"
    assert isinstance(decide(learned, attempt(OLD_PASSWORD)), AuthDecision)


def test_a_collector_without_a_password_on_record_is_accepted_by_its_key_as_the_registry_does() -> None:
    outcome = decide(entry(passwords=(), password_last_proved=""), attempt())
    assert isinstance(outcome, AuthDecision)


def test_a_token_enrolled_collector_may_leave_its_zone_to_the_registry() -> None:
    assert isinstance(decide(entry(enrolled=True), attempt(zone="")), AuthDecision)
    assert decide(entry(), attempt(zone="")) == local.Deferred("refused", "identity")
