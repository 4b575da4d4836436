"""The secrets services present to each other, and which secret is which service.

Each service that calls another has its own identity secret (`--token-file`); each
service that is called knows its callers' secrets (`--peer-token NAME=FILE`, the file
holding the secret or `sha256:<hex>` of it, so a callee need not hold a caller's secret).
A call presenting a peer's secret runs as `service:NAME`, which the policy table allows
only the RPCs that service needs, and which no admin token can be.

`outpost-run` creates one secret per service in `<data-dir>/secrets/` on first start; in
Kubernetes a Secret holds them (`deploy/k8s`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import grpc

from outpost.auth import bearer
from outpost.auth.principals import Principal

SERVICES_THAT_CALL = ("gateway", "scheduler")
DIGEST_PREFIX = "sha256:"


def parse_peer_tokens(specs: Iterable[str]) -> dict[str, Path]:
    """`["gateway=/run/secrets/gateway.token", ...]` (or one comma-separated string each)."""
    found: dict[str, Path] = {}
    for spec in specs:
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, path = item.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ValueError(f"expected NAME=FILE for a peer token, got {item!r}")
            found[name.strip()] = Path(path.strip())
    return found


def load_peer_digests(files: Mapping[str, Path]) -> dict[bytes, Principal]:
    """Read each peer's file: the secret itself, or `sha256:<hex>` of it."""
    digests: dict[bytes, Principal] = {}
    for name, path in files.items():
        text = bearer.read_secret_file(path)
        if text.startswith(DIGEST_PREFIX):
            try:
                digest = bytes.fromhex(text[len(DIGEST_PREFIX) :])
            except ValueError:
                raise ValueError(f"{path}: sha256: must be followed by 64 hex digits") from None
            if len(digest) != 32:
                raise ValueError(f"{path}: sha256: must be followed by 64 hex digits")
        else:
            digest = bearer.digest(text)
        digests[digest] = Principal.of_service(name)
    return digests


def ensure_service_tokens(directory: Path) -> dict[str, Path]:
    """Create (once) a secret per calling service under `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {}
    for name in SERVICES_THAT_CALL:
        path = directory / f"{name}.token"
        if not path.exists():
            bearer.write_secret_file(path, bearer.new_secret())
        paths[name] = path
    return paths


def add_identity_flags(parser: argparse.ArgumentParser, service: str, *, calls_peers: bool, called_by: bool) -> None:
    """`--token-file` (this service's identity) and/or `--peer-token` (who may call it)."""
    env = f"OUTPOST_{service.upper()}_"
    if calls_peers:
        parser.add_argument(
            "--token-file",
            type=Path,
            default=os.environ.get(env + "TOKEN_FILE"),
            help=f"this {service}'s service identity (a secret, one line) presented to the services it calls",
        )
    if called_by:
        parser.add_argument(
            "--peer-token",
            action="append",
            default=[v for v in [os.environ.get(env + "PEER_TOKENS")] if v],
            metavar="NAME=FILE",
            help="a service identity allowed to call this one (gateway, scheduler): FILE holds its secret "
            f"or sha256:<hex>; repeat the flag, or {env}PEER_TOKENS=gateway=F1,scheduler=F2",
        )


def peer_channel(address: str, ca_file: str | None, secret: str | None) -> grpc.aio.Channel:
    """A channel to another service presenting `secret`; TLS when a CA file is given."""
    interceptors = bearer.aio_bearer(secret)
    if ca_file:
        with open(ca_file, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(ca.read())
        return grpc.aio.secure_channel(address, credentials, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, interceptors=interceptors)
