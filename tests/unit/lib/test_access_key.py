"""The access key's text form: what a collector is handed must round-trip and fail clearly."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from outpost.access_key import (
    AccessKey,
    AccessKeyFormatError,
    AccessKeyGrant,
    new_key_id,
    new_secret,
    read_access_key_file,
    write_access_key_file,
)


def test_round_trip_with_and_without_the_server_key() -> None:
    plain = AccessKey(new_key_id(), new_secret())
    pinned = AccessKey(new_key_id(), new_secret(), server_public_key=bytes(range(32)))
    for key in (plain, pinned):
        text = key.encode()
        assert text.startswith("outpost-ak1.")
        assert AccessKey.parse(text) == key
        assert AccessKey.parse(f"  {text}\n") == key


def test_known_encoding() -> None:
    key = AccessKey("ak_0123", bytes(32), server_public_key=bytes([255]) * 32)
    assert key.encode() == "outpost-ak1.ak_0123." + "A" * 43 + "." + "_" * 42 + "8"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with"),
        ("outpost_abc", "starts with"),
        ("outpost-ak1.id", "outpost-ak1.<id>.<secret>"),
        ("outpost-ak1.id." + "A" * 43 + ".x.y", "outpost-ak1.<id>.<secret>"),
        ("outpost-ak1.id.AAAA", "3 bytes, not 32"),
        ("outpost-ak1.id.!!!!", "base64"),
        ("outpost-ak1.has space." + "A" * 43, "one word"),
        ("outpost-ak1.bad/id." + "A" * 43, "A-Z a-z 0-9"),
        ("outpost-ak1." + "a" * 65 + "." + "A" * 43, "1-64"),
        ("outpost-ak1.id." + "A" * 43 + ".AAAA", "server public key is 3 bytes"),
    ],
)
def test_bad_text_is_refused_with_a_reason_and_no_secret(text: str, message: str) -> None:
    with pytest.raises(AccessKeyFormatError, match=message.replace(".", r"\.").replace("[", r"\[")) as info:
        AccessKey.parse(text)
    assert "A" * 43 not in str(info.value)


def test_repr_never_shows_the_secret() -> None:
    key = AccessKey("ak_x", b"\x07" * 32)
    grant = AccessKeyGrant("ak_x", "lab", b"\x07" * 32, zone="lab")
    for text in (repr(key), str(key), repr(grant)):
        assert "BwcH" not in text and "\\x07" not in text


def test_file_is_written_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "access.key"
    key = AccessKey(new_key_id(), new_secret())
    write_access_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_access_key_file(path) == key
    path.write_text("nonsense\n")
    with pytest.raises(AccessKeyFormatError, match=str(path)):
        read_access_key_file(path)
