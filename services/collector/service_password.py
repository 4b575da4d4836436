"""The collector's service password: re-read at every connection, proven at every handshake.

The password is a per-handshake credential (ADR 0025): a registered collector's Challenge
carries the parameters of the credentials on record (salt, argon2id costs, the public key
each is bound to) and the collector answers each with a SCRAM ClientProof
(`outpost.password_proof`). So an operator rotates it by editing `--password-file` during
the overlap `outpostctl collectors set-password` opens: the file is read again before
every connection, no restart. A password given in OUTPOST_COLLECTOR_PASSWORD is read once
(the environment of a running process cannot be changed from outside): rotating it needs
a restart.

argon2 is slow on purpose, so SaltedPassword is kept per (password, username, parameter
set) and a reconnect storm costs one HMAC per attempt, not one argon2 run. The costs a
challenge asks for are capped like the registry caps a verifier's: a rogue or
compromised server must not make the collector allocate gigabytes; such a challenge ends
the session with a clear reason and nothing is computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from outpost import password_proof
from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from services.collector.domain.credentials import password_verifier

log = structlog.get_logger(__name__)

R = agent_pb2.DisconnectReason
V = TypeVar("V")
MAX_CACHED = 8
"""SaltedPasswords kept: the current and previous credential, for a few passwords."""


class ServicePassword:
    """The service password as the collector holds it: `refresh()` before each connection."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        password_file: Path | None = None,
        make_verifier: Callable[..., str] = password_verifier,
    ) -> None:
        """`make_verifier(password, username=, public_key=)` computes the Hello's verifier:
        the collector's own argon2id costs unless a harness needs cheaper ones."""
        if not password:
            raise ValueError("the service password is empty")
        self.username = username
        self.password_file = password_file
        self._make_verifier = make_verifier
        self._password = password
        self._salted: dict[bytes, bytes] = {}
        self._verifiers: dict[bytes, str] = {}

    def __repr__(self) -> str:  # never print the password
        return f"ServicePassword(username={self.username!r}, password_file={self.password_file!r})"

    def refresh(self) -> None:
        """Read the password file again; an unreadable or empty file keeps the password held."""
        if self.password_file is None:
            return
        try:
            text = self.password_file.read_text()
        except OSError as exc:
            log.warning("password_file_unreadable", path=str(self.password_file), error=str(exc))
            return
        password = text.removesuffix("\n").removesuffix("\r")
        if not password:
            log.warning("password_file_empty", path=str(self.password_file))
            return
        if password != self._password:
            log.info("password_file_changed", path=str(self.password_file))
            self._password = password

    def verifier(self, public_key: bytes) -> str:
        """The Hello's argon2id verifier for `public_key` (ADR 0013), computed once per password."""
        key = self._cache_key(b"verifier", public_key)
        if key not in self._verifiers:
            self._verifiers = _bounded(self._verifiers)
            self._verifiers[key] = self._make_verifier(self._password, username=self.username, public_key=public_key)
        return self._verifiers[key]

    def proofs(self, offered: Sequence[agent_pb2.PasswordParameters], transcript: bytes) -> list[bytes]:
        """One ClientProof per offered parameter set, in order (docs/protocol.md §4.4).

        Raises RemoteProtocolError (the session ends with that reason) for more sets than a
        rotation needs or costs above the caps, before any argon2 runs.
        """
        if len(offered) > password_proof.MAX_PARAMETER_SETS:
            raise RemoteProtocolError(
                R.DISCONNECT_REASON_PROTOCOL_ERROR,
                f"challenge offered {len(offered)} password parameter sets; at most "
                f"{password_proof.MAX_PARAMETER_SETS} are accepted",
            )
        params = [_params(p) for p in offered]
        for p in params:
            problem = password_proof.parameters_problem(p)
            if problem is not None:
                log.error("password_parameters_refused", problem=problem)
                raise RemoteProtocolError(
                    R.DISCONNECT_REASON_PROTOCOL_ERROR,
                    f"challenge password parameters refused: {problem} (a server this collector should not trust)",
                )
        return [
            password_proof.client_proof(self._salted_for(p), password_proof.auth_message(transcript, p)) for p in params
        ]

    def _salted_for(self, params: password_proof.PasswordParameters) -> bytes:
        key = self._cache_key(
            b"salted",
            params.salt,
            params.memory_kib.to_bytes(4, "big"),
            params.time_cost.to_bytes(4, "big"),
            params.parallelism.to_bytes(4, "big"),
            params.public_key,
        )
        if key not in self._salted:
            self._salted = _bounded(self._salted)
            self._salted[key] = password_proof.salted_password(self._password, username=self.username, params=params)
        return self._salted[key]

    def _cache_key(self, *parts: bytes) -> bytes:
        material = [self.username.encode(), self._password.encode(), *parts]
        return hashlib.sha256(b"".join(len(p).to_bytes(4, "big") + p for p in material)).digest()


def _params(p: agent_pb2.PasswordParameters) -> password_proof.PasswordParameters:
    return password_proof.PasswordParameters(
        salt=p.salt,
        memory_kib=p.memory_kib,
        time_cost=p.time_cost,
        parallelism=p.parallelism,
        public_key=p.public_key,
    )


def _bounded(cache: dict[bytes, V]) -> dict[bytes, V]:
    """The cache with room for one more: the oldest entries go first."""
    while len(cache) >= MAX_CACHED:
        cache.pop(next(iter(cache)))
    return cache
