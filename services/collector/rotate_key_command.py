"""`outpost-collector rotate-key --data-dir D`: start a rotation of the identity key (ADR 0024).

It only writes the next key (`collector.key.next`, 0600, atomic) into the data dir; the
collector does the rest over its sealed session. A file is the mechanism because it is
the one thing that works the same whether the collector is running (it notices the file
within a heartbeat interval), stopped (it rotates after its next start) or in a
container with the data dir on a volume, needs no control socket or signal permissions,
and survives a crash at any point (the file is the rotation's whole state). Running it
twice before the rotation completes keeps the first next key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from outpost.session import handshake
from services.collector.store.identity import IdentityError, IdentityStore

COMMAND = "rotate-key"


def run(argv: list[str], prog: str, default_data_dir: str) -> int:
    """Write (or keep) the next key; print what happens next. Exit 0, or 2 with one line."""
    parser = argparse.ArgumentParser(
        prog=f"{prog} {COMMAND}",
        description="Replace the collector's identity key over its live session: the old key signs the new one.",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("OUTPOST_COLLECTOR_DATA_DIR") or default_data_dir,
        help="the collector's data directory (OUTPOST_COLLECTOR_DATA_DIR)",
    )
    args = parser.parse_args(argv)
    store = IdentityStore(Path(args.data_dir))
    try:
        next_key, created = store.create_next_key()
    except (IdentityError, OSError) as exc:
        print(f"{prog} {COMMAND}: error: {exc}", file=sys.stderr)
        return 2
    public = next_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    print(f"{'created' if created else 'already waiting'}: next key {handshake.fingerprint(public)}")
    print(f"written to {store.next_key_path}; the collector sends it over its next registered sealed session")
    print("and switches once the server accepts it (log event key_rotated; `outpostctl collectors show`).")
    return 0
