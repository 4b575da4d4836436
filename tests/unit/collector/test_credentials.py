from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from services.collector.domain.credentials import password_verifier

from .conftest import PASSWORD


def test_the_verifier_verifies_against_the_password_with_argon2(verifier: str) -> None:
    assert PasswordHasher().verify(verifier, PASSWORD)


def test_the_verifier_never_contains_the_password(verifier: str) -> None:
    assert verifier != PASSWORD
    assert PASSWORD not in verifier


def test_the_verifier_does_not_verify_another_password(verifier: str) -> None:
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(verifier, PASSWORD + "!")


def test_the_verifier_is_argon2id_with_owasp_parameters(verifier: str) -> None:
    assert verifier.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_each_verifier_has_its_own_salt() -> None:
    assert password_verifier("pw") != password_verifier("pw")


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        password_verifier("")
