"""Roles and principals: who a call runs as, set once per call by the auth interceptor.

A principal is either a person's or a script's admin token (a name and a `Role`), or a
service identity ("service:gateway"). Servicers read `current_principal()` for the
audit and for fields like `state_changed_by`; they never read a name from the request.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """Admin roles; each includes every role below it."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: expected viewer, operator or admin") from None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an admin token (`role` set) or a service (`service` set)."""

    name: str
    role: Role | None = None
    service: str | None = None

    @classmethod
    def of_service(cls, service: str) -> Principal:
        return cls(name=f"service:{service}", service=service)

    @property
    def role_label(self) -> str:
        return "service" if self.service else (self.role.label if self.role else "none")


ANONYMOUS = Principal(name="anonymous")
"""Calls that need no credential (health probes) run as this."""

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("outpost_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal of the call being served (ANONYMOUS outside an authenticated call)."""
    return _current.get()


def bind_principal(principal: Principal) -> contextvars.Token[Principal]:
    """Set the principal for the rest of this call's task; the interceptor's job only."""
    return _current.set(principal)
