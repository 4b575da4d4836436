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
