"""Why a sealed session ends: one typed error, a machine-readable cause, a message for people.

A `SealedSessionError` is a `RemoteProtocolError`: the transport loop that already closes
a session on one (with a Disconnect carrying `reason`) closes a sealed session the same
way. `cause` is finer than the wire's `DisconnectReason`, for logs and metrics
(`outpost_gateway_sealed_failures_total{cause}` and
`outpost_gateway_handshake_refusals_total{reason}` on the gateway).
"""

from __future__ import annotations

import enum

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError

R = agent_pb2.DisconnectReason


class CloseCause(enum.Enum):
    """What went wrong; each cause maps to one `DisconnectReason` (`DISCONNECT_REASON_BY_CAUSE`)."""

    MALFORMED_HANDSHAKE = "malformed_handshake"
    """A handshake frame of the wrong size or shape, an unknown pattern byte, a bad key id."""
    FIRST_CONTACT_REFUSED = "first_contact_refused"
    """An XX (trust-on-first-use) handshake to a responder that admits only pinned (IK) ones."""
    UNKNOWN_ACCESS_KEY = "unknown_access_key"
    """The key id names no valid access key (never issued, revoked or expired)."""
    HANDSHAKE_FAILED = "handshake_failed"
    """A handshake message did not decrypt: another access key, another server static key
    (a relaying or impersonating gateway), a collector without the private half of the key
    it sent, or a message altered in transit. Noise cannot tell these apart, by design."""
    RECORD_AUTHENTICATION_FAILED = "record_authentication_failed"
    """A transport record did not decrypt under the next counter nonce: altered (one bit is
    enough), replayed, reordered, truncated, or from another session."""
    RECORD_TRUNCATED = "record_truncated"
    """A transport record shorter than a flags byte plus the 16-byte tag."""
    RECORD_TOO_LARGE = "record_too_large"
    """A transport record above Noise's 65,535-byte message limit."""
    MALFORMED_RECORD = "malformed_record"
    """An authentic record with flag bits this version does not define."""
    ENVELOPE_TOO_LARGE = "envelope_too_large"
    """The fragments of one envelope add up to more than the session's bound."""
    NONCE_EXHAUSTED = "nonce_exhausted"
    """2^64 - 1 records in one direction: the session must end (never reached in practice)."""


DISCONNECT_REASON_BY_CAUSE: dict[CloseCause, agent_pb2.DisconnectReason] = {
    CloseCause.MALFORMED_HANDSHAKE: R.DISCONNECT_REASON_MALFORMED_FRAME,
    CloseCause.FIRST_CONTACT_REFUSED: R.DISCONNECT_REASON_ACCESS_KEY_REFUSED,
    CloseCause.UNKNOWN_ACCESS_KEY: R.DISCONNECT_REASON_ACCESS_KEY_REFUSED,
    CloseCause.HANDSHAKE_FAILED: R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
    CloseCause.RECORD_AUTHENTICATION_FAILED: R.DISCONNECT_REASON_MALFORMED_FRAME,
    CloseCause.RECORD_TRUNCATED: R.DISCONNECT_REASON_MALFORMED_FRAME,
    CloseCause.RECORD_TOO_LARGE: R.DISCONNECT_REASON_FRAME_TOO_LARGE,
    CloseCause.MALFORMED_RECORD: R.DISCONNECT_REASON_MALFORMED_FRAME,
    CloseCause.ENVELOPE_TOO_LARGE: R.DISCONNECT_REASON_FRAME_TOO_LARGE,
    CloseCause.NONCE_EXHAUSTED: R.DISCONNECT_REASON_PROTOCOL_ERROR,
}


class SealedSessionError(RemoteProtocolError):
    """The peer (or the path) broke the sealed session: close it; `cause` says why."""

    def __init__(self, cause: CloseCause, message: str) -> None:
        super().__init__(DISCONNECT_REASON_BY_CAUSE[cause], message)
        self.cause = cause
