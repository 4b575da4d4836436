"""The failures outpostctl reports to its user, and how gRPC statuses become them.

Every expected failure ends as `error: <message>` on stderr and exit status 1, never as a
traceback; `main.main` does the printing, clients raise.
"""

from __future__ import annotations

import grpc


class CommandError(Exception):
    """A failure the operator can act on; its message is printed after `error: `."""


class ServiceUnreachableError(CommandError):
    """The service did not answer at all (down, wrong address, TLS mismatch, too slow).

    `reason` is the short cause, for places that report several services side by side
    (`server info`), where the full advice of the message would repeat itself.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotAuthenticatedError(CommandError):
    """The service wants a (valid) admin token and did not get one."""


def error_from_rpc(
    exc: grpc.RpcError, *, service: str, address: str, timeout: float, tls: bool, auth_origin: str = "none"
) -> CommandError:
    """Translate a failed call to `service` at `address` into what the operator reads."""
    code = exc.code()
    details = exc.details() or code.name
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if auth_origin == "none":
            return NotAuthenticatedError(
                f"the {service} at {address} needs an admin token and none was found: pass --token-file FILE, "
                "set OUTPOST_TOKEN, or run `make run` on this machine to create the local context"
            )
        return NotAuthenticatedError(f"the {service} at {address} refused the token from {auth_origin}: {details}")
    if code == grpc.StatusCode.UNAVAILABLE:
        message = f"cannot reach the {service} at {address}: is the control plane running (make run)?"
        if tls:
            # Over TLS "unavailable" is as often a certificate problem as a stopped server.
            message += f" ({details})"
        return ServiceUnreachableError(message, reason=details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServiceUnreachableError(
            f"the {service} at {address} did not answer within {timeout:g} s",
            reason=f"no answer within {timeout:g} s",
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return CommandError(f"the {service} at {address} does not implement this call: is it an older version?")
    return CommandError(details)
