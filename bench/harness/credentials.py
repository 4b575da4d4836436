"""The credentials a bench's control plane runs with: service identities and the admin token.

Since issue 9 every registry and scheduler RPC, and the gateway's admin listener, want
`authorization: Bearer <secret>` (`docs/security.md`). The bench wires its processes as
`tests/process_harness.py` and `outpost-run` do:

- one identity secret per calling service in `<workdir>/secrets/` (`ensure_service_tokens`);
  the registry knows both (`--peer-token`), the scheduler is the scheduler (`--token-file`)
  and knows the gateway, the gateway is the gateway;
- the registry's first start writes the bootstrap admin token to `<workdir>/admin.token`.

Clients present what a real caller would: the admin token for what an operator does
(RegisterCollector, CreateDiscovery, ListSessions on the gateway's admin listener), the
gateway's identity for what a gateway does (AuthenticateCollector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from outpost.auth.bearer import read_secret_file
from outpost.auth.service_tokens import ensure_service_tokens, peer_channel


@dataclass(frozen=True)
class Credentials:
    """Secrets under `workdir`; the admin token exists once the registry has started."""

    workdir: Path

    @property
    def identities(self) -> dict[str, Path]:
        return ensure_service_tokens(self.workdir / "secrets")

    @property
    def admin_token_file(self) -> Path:
        return self.workdir / "admin.token"

    @property
    def admin_token(self) -> str:
        return read_secret_file(self.admin_token_file)

    @property
    def gateway_secret(self) -> str:
        return read_secret_file(self.identities["gateway"])

    def registry_flags(self) -> list[str]:
        ids = self.identities
        return [
            f"--peer-token=gateway={ids['gateway']}",
            f"--peer-token=scheduler={ids['scheduler']}",
            f"--admin-token-file={self.admin_token_file}",
        ]

    def scheduler_flags(self) -> list[str]:
        ids = self.identities
        return [f"--token-file={ids['scheduler']}", f"--peer-token=gateway={ids['gateway']}"]

    def gateway_flags(self) -> list[str]:
        return [f"--token-file={self.identities['gateway']}"]


def authorized_channel(address: str, secret: str) -> grpc.aio.Channel:
    """A plaintext grpc.aio channel to `address` presenting `secret` on every call."""
    return peer_channel(address, None, secret)
