"""The transport cipher is Noise's CipherState: checked record for record against noiseprotocol's own.

A real IKpsk2 handshake between two noiseprotocol connections; then one side's key and
counter move into `TransportCipher` while the other side stays noiseprotocol. Records
must open both ways, through rekeys on both sides, and a tampered record must fail
without moving the counter (the spec: a failed DECRYPT does not increment n).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import NoiseInvalidMessage, NoiseMaxNonceError

from outpost.session.noise.transport_cipher import MAX_NONCE, TransportCipher

NAME = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"


def _raw_private() -> bytes:
    return X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pair() -> tuple[NoiseConnection, NoiseConnection]:
    psk, server, client = os.urandom(32), _raw_private(), _raw_private()
    initiator, responder = NoiseConnection.from_name(NAME), NoiseConnection.from_name(NAME)
    for connection, static in ((initiator, client), (responder, server)):
        connection.set_psks(psk=psk)
        connection.set_keypair_from_private_bytes(Keypair.STATIC, static)
    initiator.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, _public(server))
    initiator.set_as_initiator()
    responder.set_as_responder()
    initiator.start_handshake()
    responder.start_handshake()
    responder.read_message(initiator.write_message(b"hello"))
    initiator.read_message(responder.write_message(b""))
    assert initiator.handshake_finished and responder.handshake_finished
    return initiator, responder


def test_records_open_both_ways_against_noiseprotocol_through_rekeys() -> None:
    initiator, responder = _pair()
    protocol = responder.noise_protocol
    send = TransportCipher.from_noise(protocol.cipher_state_encrypt)
    receive = TransportCipher.from_noise(protocol.cipher_state_decrypt)
    for round_ in range(5):
        for size in (0, 1, 100, 65_000):
            message = os.urandom(size)
            assert receive.decrypt(initiator.encrypt(message)) == message
            assert initiator.decrypt(send.encrypt(message)) == message
        # rekey one direction at a time, on both ends, as the channel does on a FLAG_REKEY record
        if round_ % 2 == 0:
            send.rekey()
            initiator.rekey_inbound_cipher()
        else:
            receive.rekey()
            initiator.rekey_outbound_cipher()


def test_a_tampered_record_fails_and_leaves_the_counter_where_it_was() -> None:
    initiator, responder = _pair()
    receive = TransportCipher.from_noise(responder.noise_protocol.cipher_state_decrypt)
    record = bytearray(initiator.encrypt(b"heartbeat"))
    record[-1] ^= 1
    with pytest.raises(NoiseInvalidMessage):
        receive.decrypt(bytes(record))
    record[-1] ^= 1
    assert receive.decrypt(bytes(record)) == b"heartbeat"  # the same nonce was tried again


def test_the_reserved_nonce_is_never_used_for_a_record() -> None:
    cipher = TransportCipher(bytes(32), MAX_NONCE)
    with pytest.raises(NoiseMaxNonceError):
        cipher.encrypt(b"x")
    with pytest.raises(NoiseMaxNonceError):
        cipher.decrypt(b"x" * 17)
    with pytest.raises(ValueError, match="32 bytes"):
        TransportCipher(b"short")
