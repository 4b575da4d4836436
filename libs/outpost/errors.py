"""Domain errors shared by every service.

Each subclass maps to exactly one gRPC status code in `outpost.grpc_errors`; a message
must let an operator act on it ("collector 'edge-7' is bound to server instance A, not B").
"""


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
