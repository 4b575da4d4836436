"""A firewalled loopback range: nftables rules that drop TCP SYNs to some ports, and nothing else.

`dropping(network, ports)` creates one nftables table of its own (a unique name, so
concurrent runs never touch each other's rules, nor anyone else's), with one input-hook
rule: packets to `network` on `ports` are dropped, so a connect() there gets no answer at
all (nmap's *filtered*), while every other port of the range still answers (refused =
*closed*, or a listener = *open*). The table is deleted when the block ends, also on
error. The rule sits on the input hook, not output: dropped on output, connect() would
fail at once with EPERM instead of timing out as behind a real firewall.

`unavailable()` says why this machine cannot do it (no nft, not permitted), or None.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

NFT = "nft"


def unavailable() -> str | None:
    """None when nftables rules can be made here; else why not (for a skip or an error)."""
    if shutil.which(NFT) is None:
        return "nft is not installed (make system-deps installs nftables)"
    probe = f"outpost_probe_{uuid.uuid4().hex[:8]}"
    made = subprocess.run([NFT, "add", "table", "inet", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"nftables not permitted here: {made.stderr.strip() or made.returncode}"
    subprocess.run([NFT, "delete", "table", "inet", probe], capture_output=True, check=False)
    return None


@contextmanager
def dropping(network: str, ports: Iterable[int]) -> Iterator[str]:
    """Drop TCP to `network` (a loopback IPv4 CIDR) on `ports` while the block runs; yields the table name."""
    net = ipaddress.ip_network(network)
    if net.version != 4 or not net.is_loopback:
        raise ValueError(f"{network}: only loopback IPv4 ranges are firewalled here")
    wanted = sorted(set(ports))
    if not wanted or not all(0 < port < 65536 for port in wanted):
        raise ValueError(f"ports to drop: {wanted}")
    table = f"outpost_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    ruleset = (
        f"table inet {table} {{\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    ip daddr {net} tcp dport {{ {', '.join(map(str, wanted))} }} drop\n"
        "  }\n"
        "}\n"
    )
    subprocess.run([NFT, "-f", "-"], input=ruleset, text=True, capture_output=True, check=True)
    try:
        yield table
    finally:
        subprocess.run([NFT, "delete", "table", "inet", table], capture_output=True, check=False)
