"""The collector's password verifier: argon2id over the password bound to its key (ADR 0013)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from outpost.registration import verifier_input
from services.collector.domain.credentials import password_verifier

from .conftest import KEY, PASSWORD, USERNAME


def bound(password: str = PASSWORD, *, username: str = USERNAME, key: bytes = KEY) -> bytes:
    return verifier_input(username=username, public_key=key, password=password)


def test_the_verifier_verifies_against_the_password_bound_to_this_key(verifier: str) -> None:
    assert PasswordHasher().verify(verifier, bound())


def test_the_verifier_never_contains_the_password(verifier: str) -> None:
    assert verifier != PASSWORD
    assert PASSWORD not in verifier


@pytest.mark.parametrize(
    "other",
    [
        bound(PASSWORD + "!"),
        bound(key=bytes(32)),
        bound(username="svc-other"),
        PASSWORD.encode(),
    ],
    ids=["another password", "another key", "another username", "the bare password"],
)
def test_the_verifier_does_not_verify_for_anything_else(verifier: str, other: bytes) -> None:
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(verifier, other)


def test_the_verifier_is_argon2id_with_owasp_parameters(verifier: str) -> None:
    assert verifier.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_each_verifier_has_its_own_salt() -> None:
    assert password_verifier("pw", username=USERNAME, public_key=KEY) != password_verifier(
        "pw", username=USERNAME, public_key=KEY
    )


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        password_verifier("", username=USERNAME, public_key=KEY)
