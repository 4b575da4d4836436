"""The enrollment token's text form: what a collector is handed must round-trip and fail clearly."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from outpost.enrollment_token import (
    EnrollmentToken,
    EnrollmentTokenFormatError,
    new_secret,
    new_token_id,
    read_enrollment_token_file,
    write_enrollment_token_file,
)


def test_round_trip() -> None:
    token = EnrollmentToken(new_token_id(), new_secret())
    text = token.encode()
    assert text.startswith("outpost-et1.et_")
    assert EnrollmentToken.parse(text) == token
    assert EnrollmentToken.parse(f"  {text}\n") == token


def test_known_encoding_and_digest() -> None:
    token = EnrollmentToken("et_0123", bytes(32))
    assert token.encode() == "outpost-et1.et_0123." + "A" * 43
    assert token.digest == hashlib.sha256(bytes(32)).digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with"),
        ("outpost-ak1.id." + "A" * 43, "starts with 'outpost-et1.'"),
        ("outpost-et1.id", "outpost-et1.<id>.<secret>"),
        ("outpost-et1.id." + "A" * 43 + ".x", "outpost-et1.<id>.<secret>"),
        ("outpost-et1.id.AAAA", "3 bytes, not 32"),
        ("outpost-et1.id.!!!!", "base64"),
        ("outpost-et1.has space." + "A" * 43, "one word"),
        ("outpost-et1.bad/id." + "A" * 43, "A-Z a-z 0-9"),
        ("outpost-et1." + "a" * 65 + "." + "A" * 43, "1-64"),
        ("outpost-et1.id." + "A" * 300, "one word on one line"),
    ],
)
def test_malformed_text_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(EnrollmentTokenFormatError, match=message.replace("(", r"\(").replace(".", r"\.")):
        EnrollmentToken.parse(text)


def test_repr_and_errors_never_show_the_secret(tmp_path: Path) -> None:
    token = EnrollmentToken(new_token_id(), new_secret())
    secret_text = token.encode().rsplit(".", 1)[1]
    assert secret_text not in repr(token) and secret_text not in str(token)
    bad = tmp_path / "bad"
    bad.write_text(token.encode() + ".extra")
    with pytest.raises(EnrollmentTokenFormatError) as refused:
        read_enrollment_token_file(bad)
    assert secret_text not in str(refused.value) and str(bad) in str(refused.value)


def test_the_file_is_written_0600_and_read_back(tmp_path: Path) -> None:
    token = EnrollmentToken(new_token_id(), new_secret())
    path = tmp_path / "dir" / "enrollment.token"
    write_enrollment_token_file(path, token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_enrollment_token_file(path) == token


def test_the_signed_transcript_covers_the_token_only_when_one_is_sent() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from outpost.agent.v1 import agent_pb2
    from outpost.session import handshake

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    plain = agent_pb2.Hello(instance_uid="u", name="edge", public_key=public)
    with_token = agent_pb2.Hello(instance_uid="u", name="edge", public_key=public, enrollment_token="outpost-et1.a.b")
    nonce = handshake.new_nonce(0)
    signature = handshake.sign(key, with_token, nonce, "server")

    assert handshake.transcript(plain, nonce, "server") != handshake.transcript(with_token, nonce, "server")
    assert handshake.transcript(with_token, nonce, "server").endswith(b"outpost-et1.a.b")
    assert handshake.verify(with_token, nonce, "server", signature)
    moved = agent_pb2.Hello()
    moved.CopyFrom(with_token)
    moved.enrollment_token = "outpost-et1.a.c"
    assert not handshake.verify(moved, nonce, "server", signature)
    assert not handshake.verify(plain, nonce, "server", signature)
