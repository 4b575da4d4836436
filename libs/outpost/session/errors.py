"""Protocol errors of the session core (after h11 and websockets).

`RemoteProtocolError`: the peer broke the protocol; the session closes with a reason and
the process carries on. `LocalProtocolError`: our own code misused the core (a bug).
"""

from __future__ import annotations

from outpost.agent.v1 import agent_pb2


class RemoteProtocolError(Exception):
    """The peer broke the protocol; `reason` and `message` go into the Disconnect."""

    def __init__(self, reason: agent_pb2.DisconnectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class LocalProtocolError(Exception):
    """Our own code called the session core wrongly: a bug, never the peer's fault."""
