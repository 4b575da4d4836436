"""Domain errors shared by every service.

Each subclass maps to exactly one gRPC status code in `outpost.grpc_errors`; a message
must let an operator act on it ("collector 'edge-7' is bound to server instance A, not B").

A message quotes what the caller sent with `brief()`: a 10,000-character name echoed
whole would not fit in the status trailer (gRPC's metadata limit is 8 KiB) and the
caller would see a transport error instead of the rule it broke.
"""

MAX_QUOTED_CHARS = 64


def brief(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`text` quoted for an error message: whole if short, else its start and its length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


class OutpostError(Exception):
    """Base of every expected, operator-facing failure."""

    status: str = ""
    """The peer's gRPC status name when a client mapped a peer's failure to this error
    (`outpost.grpc_errors.peer_error`), for logs; empty otherwise."""
    details: str = ""
    """The peer's own message in that case (may be empty); empty otherwise."""


class NotFound(OutpostError):
    pass


class AlreadyExists(OutpostError):
    pass


class InvalidArgument(OutpostError):
    pass


class FailedPrecondition(OutpostError):
    pass


class PermissionDenied(OutpostError):
    pass


class Unauthenticated(OutpostError):
    pass


class Unavailable(OutpostError):
    pass


class PeerFailed(OutpostError):
    """A peer failed a call for a reason a retry will not fix (its INTERNAL, UNKNOWN,
    CANCELLED, ...). Raised by clients only (`outpost.grpc_errors.peer_error`), never by a
    servicer, so it maps to no status of its own."""
