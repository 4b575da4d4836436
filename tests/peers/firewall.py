"""nftables drop rules on loopback: a port that gets no answer at all, as behind a firewall.

A table of our own (`outpost_truth_<pid>` unless named) with one input chain; `drop()` and
`allow()` rewrite that chain's rules in one `nft -f` transaction, so the rule set is
always exactly the ports dropped now. The SYN goes out, is dropped on the way in, and the
client's connect() hangs until it gives up: "filtered" to `nmap -sT` and to a collector.
Only TCP to the given loopback address and port is touched; other tests' traffic is not.
`close()` deletes the table (call it in a `finally`).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess

NFT = "nft"


class PortFilter:
    """Drop rules for (loopback address, TCP port) pairs, in a table of this process's own."""

    def __init__(self, table: str | None = None) -> None:
        self.table = table or f"outpost_truth_{os.getpid()}"
        self._dropped: set[tuple[str, int]] = set()
        self._nft(f"add table ip {self.table}\n")
        self._nft(f"add chain ip {self.table} input {{ type filter hook input priority -10; policy accept; }}\n")

    def drop(self, host: str, port: int) -> None:
        self._dropped.add((_loopback(host), port))
        self._apply()

    def allow(self, host: str, port: int) -> None:
        self._dropped.discard((_loopback(host), port))
        self._apply()

    def close(self) -> None:
        subprocess.run([NFT, "delete", "table", "ip", self.table], check=False, capture_output=True, timeout=10)

    def _apply(self) -> None:
        rules = [f"flush chain ip {self.table} input"]
        rules += [f"add rule ip {self.table} input ip daddr {h} tcp dport {p} drop" for h, p in sorted(self._dropped)]
        self._nft("\n".join(rules) + "\n")

    @staticmethod
    def _nft(script: str) -> None:
        subprocess.run([NFT, "-f", "-"], input=script, text=True, check=True, capture_output=True, timeout=10)


def _loopback(host: str) -> str:
    address = ipaddress.IPv4Address(host)
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address: tests filter only loopback traffic")
    return str(address)
