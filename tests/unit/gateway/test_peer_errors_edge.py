"""gRPC statuses stop at the gateway's edges (ADR 0031).

A peer's failure becomes an `outpost.errors` class inside `services/gateway/peers/`
(`outpost.grpc_errors.peer_error`); servicers in `api/` map domain errors to statuses at the
server edge. Everything else branches on the project's errors, never on `grpc.StatusCode`
or `AioRpcError`: this test reads the source so a new branch on a status fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

from outpost import errors
from outpost.grpc_errors import peer_error

GATEWAY = Path(__file__).resolve().parents[3] / "services" / "gateway"
EDGES = ("peers", "api")
GRPC_STATUS_NAMES = {"StatusCode", "AioRpcError", "RpcError"}


def _uses_of_grpc_status(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in GRPC_STATUS_NAMES:
            found.append(f"{path.relative_to(GATEWAY)}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grpc"):
            found += [
                f"{path.relative_to(GATEWAY)}:{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name in GRPC_STATUS_NAMES
            ]
    return found


def test_no_gateway_module_outside_its_edges_branches_on_grpc_statuses() -> None:
    modules = [
        path
        for path in sorted(GATEWAY.rglob("*.py"))
        if path.relative_to(GATEWAY).parts[0] not in EDGES
        and "migrations" not in path.parts
        and not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    ]
    assert len(modules) > 20, "the gateway's modules were not found"
    offenders = [use for path in modules for use in _uses_of_grpc_status(path)]
    assert offenders == [], "map the status to outpost.errors in services/gateway/peers/ instead:\n" + "\n".join(
        offenders
    )


def _rpc_error(code: grpc.StatusCode, details: str = "why") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.Unavailable),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.INTERNAL, errors.PeerFailed),
        (grpc.StatusCode.CANCELLED, errors.PeerFailed),
        (grpc.StatusCode.UNKNOWN, errors.PeerFailed),
    ],
)
def test_a_peer_status_becomes_the_error_callers_branch_on(code: grpc.StatusCode, expected: type) -> None:
    """Only the statuses worth a retry become `Unavailable` (as the callers retried before)."""
    error = peer_error(_rpc_error(code))
    assert type(error) is expected
    assert (error.status, error.details, str(error)) == (code.name, "why", "why")


def test_a_peer_status_without_details_keeps_an_empty_details_and_says_its_name() -> None:
    error = peer_error(_rpc_error(grpc.StatusCode.UNAVAILABLE, ""))
    assert (error.details, str(error)) == ("", "UNAVAILABLE")
