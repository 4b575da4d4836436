"""The service password as a per-handshake SCRAM credential (ADR 0025): the construction,
the registry's check and its attacks, both session cores, and the collector's password.

SCRAM-SHA-256's published vector (RFC 7677 §3) cannot be reused (PBKDF2 is swapped for
argon2id), so the structure is checked here and the bytes are pinned in
tests/vectors/handshake_transcript.json (`test_protocol_vectors.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type, hash_secret_raw

from outpost import password_proof
from outpost.agent.v1 import agent_pb2
from outpost.password_proof import PasswordParameters
from outpost.registration import verifier_input
from outpost.session import handshake
from outpost.session.collector import Closed, CollectorSession, CollectorState
from outpost.session.errors import LocalProtocolError, RemoteProtocolError
from outpost.session.server import (
    AuthenticationRequested,
    ChallengeRequested,
    ServerSession,
    ServerSessionConfig,
    ServerState,
    SessionClosed,
)
from services.collector.service_password import ServicePassword
from services.registry.domain import passwords
from services.registry.domain.passwords import PasswordCredential, Slot
from tests.unit.collector_identity import HELLO, NONCE, PUBLIC_KEY, SERVER_INSTANCE, SESSION_ID, sign

R = agent_pb2.DisconnectReason
USERNAME = "svc-outpost"
PASSWORD = "correct horse battery staple"
# Cheap costs: the construction does not depend on them.
PARAMS = PasswordParameters(b"salt-0123456789a", 1024, 1, 1, PUBLIC_KEY)
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
TRANSCRIPT = handshake.transcript(HELLO, NONCE, SERVER_INSTANCE, b"\x11" * 32)


def salted(password: str = PASSWORD, params: PasswordParameters = PARAMS) -> bytes:
    return password_proof.salted_password(password, username=USERNAME, params=params)


def proof_for(transcript: bytes = TRANSCRIPT, password: str = PASSWORD, params: PasswordParameters = PARAMS) -> bytes:
    return password_proof.client_proof(salted(password, params), password_proof.auth_message(transcript, params))


def credential(password: str = PASSWORD, params: PasswordParameters = PARAMS, **kw: object) -> PasswordCredential:
    return PasswordCredential(
        kw.pop("slot", Slot.CURRENT),  # type: ignore[arg-type]
        params,
        password_proof.stored_key(salted(password, params)),
        NOW - timedelta(days=30),
        **kw,  # type: ignore[arg-type]
    )


# --- the construction (RFC 5802 §3 with argon2id for Hi()) --------------------------------------
def test_the_scram_keys_are_rfc_5802s_over_the_argon2id_salted_password() -> None:
    s = salted()
    expected_salted = hash_secret_raw(
        verifier_input(username=USERNAME, public_key=PUBLIC_KEY, password=PASSWORD),
        PARAMS.salt,
        time_cost=1,
        memory_cost=1024,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
    )
    assert s == expected_salted
    client_key = hmac.digest(s, b"Client Key", "sha256")
    assert password_proof.client_key(s) == client_key
    assert password_proof.stored_key(s) == hashlib.sha256(client_key).digest()
    message = password_proof.auth_message(TRANSCRIPT, PARAMS)
    signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
    assert password_proof.client_proof(s, message) == bytes(a ^ b for a, b in zip(client_key, signature, strict=True))


def test_the_salted_password_is_the_hash_of_the_verifier_the_collector_sends() -> None:
    phc = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(
        verifier_input(username=USERNAME, public_key=PUBLIC_KEY, password=PASSWORD), salt=PARAMS.salt
    )
    converted = password_proof.from_phc(phc)
    assert converted is not None
    assert (converted.salt, converted.memory_kib, converted.time_cost, converted.parallelism) == (
        PARAMS.salt,
        1024,
        1,
        1,
    )
    assert converted.stored_key == password_proof.stored_key(salted())


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43,
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 22,  # a 16-byte hash
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # above the memory cap
    ],
)
def test_a_verifier_that_is_not_a_32_byte_argon2id_hash_within_the_caps_does_not_convert(verifier: str) -> None:
    assert password_proof.from_phc(verifier) is None


# --- the server's check, and attacks on it --------------------------------------------------------
def test_the_right_proof_is_accepted() -> None:
    stored = password_proof.stored_key(salted())
    assert password_proof.proof_matches(stored, password_proof.auth_message(TRANSCRIPT, PARAMS), proof_for())


@pytest.mark.parametrize("bit", [0, 7, 128, 255])
def test_a_proof_with_one_bit_flipped_is_refused(bit: int) -> None:
    stored = password_proof.stored_key(salted())
    proof = bytearray(proof_for())
    proof[bit // 8] ^= 1 << (bit % 8)
    assert not password_proof.proof_matches(stored, password_proof.auth_message(TRANSCRIPT, PARAMS), bytes(proof))


def test_a_proof_from_another_sessions_auth_message_is_refused() -> None:
    """Replay: a proof captured in one handshake is worthless in the next (other nonce, other
    Noise handshake hash), like the Ed25519 proof it travels with."""
    stored = password_proof.stored_key(salted())
    captured = proof_for(TRANSCRIPT)
    for other in (
        handshake.transcript(HELLO, bytes(32), SERVER_INSTANCE, b"\x11" * 32),  # another nonce
        handshake.transcript(HELLO, NONCE, SERVER_INSTANCE, b"\x22" * 32),  # another sealed session
        handshake.transcript(HELLO, NONCE, SERVER_INSTANCE),  # unsealed
    ):
        assert not password_proof.proof_matches(stored, password_proof.auth_message(other, PARAMS), captured)


def test_the_stored_key_from_a_stolen_database_is_no_proof() -> None:
    """What the registry keeps logs nobody in: StoredKey (or anything made from it alone) is not
    ClientKey, and no proof built from it verifies."""
    stored = password_proof.stored_key(salted())
    message = password_proof.auth_message(TRANSCRIPT, PARAMS)
    forged = [
        stored,
        password_proof.client_proof(stored, message),  # StoredKey taken for SaltedPassword
        bytes(a ^ b for a, b in zip(stored, hmac.digest(stored, message, "sha256"), strict=True)),
    ]
    assert not any(password_proof.proof_matches(stored, message, f) for f in forged)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_a_proof_of_the_wrong_length_is_refused(length: int) -> None:
    stored = password_proof.stored_key(salted())
    assert not password_proof.proof_matches(stored, password_proof.auth_message(TRANSCRIPT, PARAMS), b"\0" * length)


def test_a_wrong_password_proves_nothing() -> None:
    current = credential()
    assert passwords.proved_slot([current], [(PARAMS, proof_for(password="wrong"))], TRANSCRIPT, NOW) is None


def test_during_the_overlap_either_password_proves_and_the_current_one_wins() -> None:
    new_params = PasswordParameters(b"fresh-salt-01234", 1024, 1, 1, PUBLIC_KEY)
    records = passwords.rotated(
        [credential()], credential("new password", new_params), overlap=timedelta(hours=24), now=NOW
    )
    assert [c.slot for c in records] == [Slot.CURRENT, Slot.PREVIOUS]
    offered = [(c.parameters, b"") for c in passwords.accepted(records, NOW)]
    assert [p for p, _ in offered] == [new_params, PARAMS]  # current first
    old_only = [(new_params, proof_for(password=PASSWORD, params=new_params)), (PARAMS, proof_for())]
    assert passwords.proved_slot(records, old_only, TRANSCRIPT, NOW + timedelta(hours=23)) is Slot.PREVIOUS
    both = [(new_params, proof_for(password="new password", params=new_params)), (PARAMS, proof_for())]
    assert passwords.proved_slot(records, both, TRANSCRIPT, NOW) is Slot.CURRENT


def test_a_proof_under_the_old_password_after_the_overlap_ended_is_refused() -> None:
    new_params = PasswordParameters(b"fresh-salt-01234", 1024, 1, 1, PUBLIC_KEY)
    records = passwords.rotated(
        [credential()], credential("new password", new_params), overlap=timedelta(hours=24), now=NOW
    )
    after = NOW + timedelta(hours=24)
    assert passwords.proved_slot(records, [(PARAMS, proof_for())], TRANSCRIPT, after) is None
    assert [c.slot for c in passwords.accepted(records, after)] == [Slot.CURRENT]


def test_a_proof_for_parameters_not_on_record_proves_nothing() -> None:
    """A gateway (or collector) cannot choose the salt or the bound key the proof is checked under."""
    other = PasswordParameters(b"other-salt-01234", 1024, 1, 1, PUBLIC_KEY)
    assert passwords.proved_slot([credential()], [(other, proof_for(params=other))], TRANSCRIPT, NOW) is None


def test_a_second_rotation_during_the_overlap_drops_the_oldest_password() -> None:
    second = credential("second", PasswordParameters(b"second-salt-0123", 1024, 1, 1, PUBLIC_KEY))
    third = credential("third", PasswordParameters(b"third-salt-01234", 1024, 1, 1, PUBLIC_KEY))
    once = passwords.rotated([credential()], second, overlap=timedelta(hours=1), now=NOW)
    twice = passwords.rotated(once, third, overlap=timedelta(hours=1), now=NOW)
    assert [(c.slot, c.stored_key) for c in twice] == [
        (Slot.CURRENT, third.stored_key),
        (Slot.PREVIOUS, second.stored_key),
    ]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (PasswordParameters(b"s" * 16, 4_194_304, 1, 1, PUBLIC_KEY), "memory cost m=4194304 KiB"),
        (PasswordParameters(b"s" * 16, 1024, 1000, 1, PUBLIC_KEY), "time cost t=1000"),
        (PasswordParameters(b"s" * 16, 1024, 1, 64, PUBLIC_KEY), "parallelism p=64"),
        (PasswordParameters(b"s" * 4, 1024, 1, 1, PUBLIC_KEY), "salt of 4 bytes"),
        (PasswordParameters(b"s" * 16, 1024, 1, 1, b"k"), "bound public key of 1 bytes"),
    ],
)
def test_parameters_beyond_the_caps_are_refused_before_argon2_runs(params: PasswordParameters, problem: str) -> None:
    assert problem in (password_proof.parameters_problem(params) or "")
    with pytest.raises(ValueError, match=problem.split(" ", maxsplit=1)[0]):
        password_proof.salted_password(PASSWORD, username=USERNAME, params=params)


# --- the server session core ----------------------------------------------------------------------
def wire(params: PasswordParameters) -> agent_pb2.PasswordParameters:
    return agent_pb2.PasswordParameters(
        salt=params.salt,
        memory_kib=params.memory_kib,
        time_cost=params.time_cost,
        parallelism=params.parallelism,
        public_key=params.public_key,
    )


def server_after_hello() -> ServerSession:
    session = ServerSession(
        ServerSessionConfig(server_instance=SERVER_INSTANCE, password_parameters=True),
        session_id=SESSION_ID,
        nonce=NONCE,
        now=0.0,
    )
    session.receive(agent_pb2.CollectorMessage(sequence=1, hello=HELLO), 0.0)
    return session


def test_the_server_challenges_only_once_it_has_the_password_parameters() -> None:
    session = server_after_hello()
    assert session.data_to_send() == []
    assert session.events_received() == [ChallengeRequested(HELLO)]
    assert session.state is ServerState.AWAIT_PROOF

    session.challenge([wire(PARAMS)])

    [sent] = session.data_to_send()
    assert sent.challenge == agent_pb2.Challenge(
        nonce=NONCE, server_instance=SERVER_INSTANCE, password_parameters=[wire(PARAMS)]
    )
    with pytest.raises(LocalProtocolError):
        session.challenge([])


def test_the_proofs_reach_the_registry_with_the_parameters_they_answer() -> None:
    session = server_after_hello()
    session.challenge([wire(PARAMS)])
    session.receive(
        agent_pb2.CollectorMessage(
            sequence=2, proof=agent_pb2.Proof(signature=b"s" * 64, password_proofs=[proof_for()])
        ),
        0.1,
    )
    [event] = [e for e in session.events_received() if isinstance(e, AuthenticationRequested)]
    assert event.password_parameters == (wire(PARAMS),)
    assert event.password_proofs == (proof_for(),)
    assert session.state is ServerState.AUTHENTICATING


@pytest.mark.parametrize(
    ("proofs", "offered"),
    [([b"p" * 32, b"p" * 32], 1), ([b"p" * 31], 1), ([b"p" * 32], 0)],
)
def test_more_proofs_than_offered_sets_or_a_short_one_is_a_protocol_error(proofs: list[bytes], offered: int) -> None:
    session = server_after_hello()
    session.challenge([wire(PARAMS)] * offered)
    session.data_to_send()
    session.receive(
        agent_pb2.CollectorMessage(sequence=2, proof=agent_pb2.Proof(signature=b"s" * 64, password_proofs=proofs)),
        0.1,
    )
    assert session.state is ServerState.CLOSED
    [bye] = session.data_to_send()
    assert bye.disconnect.reason == R.DISCONNECT_REASON_PROTOCOL_ERROR


def test_a_proof_before_the_challenge_is_a_protocol_error() -> None:
    session = server_after_hello()
    session.receive(agent_pb2.CollectorMessage(sequence=2, proof=agent_pb2.Proof(signature=b"s" * 64)), 0.1)
    assert session.state is ServerState.CLOSED
    assert isinstance(session.events_received()[-1], SessionClosed)
    assert session.data_to_send()[-1].disconnect.message == "proof before the challenge"


def test_the_server_offers_at_most_two_parameter_sets() -> None:
    session = server_after_hello()
    with pytest.raises(LocalProtocolError):
        session.challenge([wire(PARAMS)] * 3)


# --- the collector session core and its password --------------------------------------------------
def collector_with(password: ServicePassword, channel_binding: bytes = b"") -> CollectorSession:
    session = CollectorSession(HELLO, sign, now=0.0, channel_binding=channel_binding, password_proofs=password.proofs)
    session.start(0.0)
    session.data_to_send()
    return session


def challenge(*params: agent_pb2.PasswordParameters) -> agent_pb2.ServerMessage:
    return agent_pb2.ServerMessage(
        sequence=1,
        challenge=agent_pb2.Challenge(nonce=NONCE, server_instance=SERVER_INSTANCE, password_parameters=params),
    )


def test_the_collector_answers_each_offered_set_with_a_proof_over_this_sessions_transcript() -> None:
    password = ServicePassword(username=USERNAME, password=PASSWORD)
    session = collector_with(password, channel_binding=b"\x11" * 32)
    other = PasswordParameters(b"other-salt-01234", 1024, 1, 1, bytes(range(32)))

    session.receive(challenge(wire(PARAMS), wire(other)), 0.1)

    [proof] = session.data_to_send()
    assert list(proof.proof.password_proofs) == [proof_for(), proof_for(params=other)]
    assert session.state is CollectorState.AWAIT_DECISION


def test_a_challenge_without_parameters_as_an_older_gateway_sends_is_answered_without_proofs() -> None:
    password = ServicePassword(username=USERNAME, password=PASSWORD)
    session = collector_with(password)

    session.receive(challenge(), 0.1)

    [proof] = session.data_to_send()
    assert proof.proof.signature and list(proof.proof.password_proofs) == []
    assert session.state is CollectorState.AWAIT_DECISION
    assert password._salted == {}  # no argon2 ran


def test_a_rogue_challenge_with_huge_costs_ends_the_session_and_runs_no_argon2() -> None:
    password = ServicePassword(username=USERNAME, password=PASSWORD)
    session = collector_with(password)
    huge = agent_pb2.PasswordParameters(
        salt=b"s" * 16, memory_kib=4_194_304, time_cost=1, parallelism=1, public_key=PUBLIC_KEY
    )

    started = time.monotonic()
    session.receive(challenge(huge), 0.1)

    assert time.monotonic() - started < 1.0  # 4 GiB of argon2 would take far longer (or fail)
    [bye] = session.data_to_send()
    assert bye.disconnect.reason == R.DISCONNECT_REASON_PROTOCOL_ERROR
    assert "memory cost m=4194304 KiB is outside 8..262144" in bye.disconnect.message
    [closed] = [e for e in session.events_received() if isinstance(e, Closed)]
    assert closed.retry and not closed.by_server


def test_a_challenge_offering_more_than_two_sets_ends_the_session() -> None:
    session = collector_with(ServicePassword(username=USERNAME, password=PASSWORD))
    session.receive(challenge(wire(PARAMS), wire(PARAMS), wire(PARAMS)), 0.1)
    assert session.state is CollectorState.CLOSED
    assert "3 password parameter sets" in session.data_to_send()[-1].disconnect.message


def test_a_reconnect_storm_runs_argon2_once_per_password_and_parameter_set() -> None:
    password = ServicePassword(username=USERNAME, password=PASSWORD)
    first = password.proofs([wire(PARAMS)], TRANSCRIPT)
    started = time.monotonic()
    for n in range(50):
        again = password.proofs([wire(PARAMS)], handshake.transcript(HELLO, bytes([n]) * 32, SERVER_INSTANCE))
        assert again != first  # each session's proof differs ...
    assert time.monotonic() - started < 0.5  # ... but costs an HMAC, not an argon2 run
    assert len(password._salted) == 1


def test_the_password_file_is_read_again_before_each_connection(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    password = ServicePassword(username=USERNAME, password=PASSWORD, password_file=path)
    before = password.proofs([wire(PARAMS)], TRANSCRIPT)

    path.write_text("the rotated password\n")
    password.refresh()

    assert password.proofs([wire(PARAMS)], TRANSCRIPT) == [proof_for(password="the rotated password")]
    assert before == [proof_for()]
    assert password.verifier(PUBLIC_KEY) != ServicePassword(username=USERNAME, password=PASSWORD).verifier(PUBLIC_KEY)


def test_an_emptied_or_vanished_password_file_keeps_the_password_held(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(PASSWORD)
    password = ServicePassword(username=USERNAME, password=PASSWORD, password_file=path)
    path.write_text("\n")
    password.refresh()
    path.unlink()
    password.refresh()
    assert password.proofs([wire(PARAMS)], TRANSCRIPT) == [proof_for()]


def test_the_password_is_never_in_its_repr() -> None:
    assert PASSWORD not in repr(ServicePassword(username=USERNAME, password=PASSWORD))


def test_a_refused_parameter_set_is_a_remote_protocol_error() -> None:
    password = ServicePassword(username=USERNAME, password=PASSWORD)
    with pytest.raises(RemoteProtocolError):
        password.proofs(
            [
                agent_pb2.PasswordParameters(
                    salt=b"s" * 16, memory_kib=1024, time_cost=99, parallelism=1, public_key=PUBLIC_KEY
                )
            ],
            TRANSCRIPT,
        )
