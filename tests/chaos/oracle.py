"""The conservation oracle: every result the network holds is in the inventory exactly once.

The test knows the truth (`ListenerFarm.expected`: every scanned address and exactly its
open ports) and the inventory must end equal to it, whatever broke on the way:

- one device per address of the range, none missing, none unexpected, none twice;
- each device's open ports are exactly the listeners on that address;
- each device's history is exactly what one clean observation records: the one
  `created` entry (a first sighting's ports are its starting state, not history:
  docs/inventory.md, "History"). A second `created` means the device was made twice; a
  `port.N` entry means it was seen in fragments or a port flapped: both are results
  applied twice or half.

The devices come from `outpostctl devices list --json`, as an operator reads them. The
history of each device is read with the same client `outpostctl devices show` uses
(`outpostctl.gateway_client`), in this process: forty `outpostctl` processes would cost
half a minute on two cores and show nothing more.

Every problem found is reported at once, so one failing run shows the whole picture.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from outpostctl.endpoints import Endpoints
from outpostctl.gateway_client import GatewayClient
from tests.process_harness import ControlPlane

CREATED = "created"


@dataclass(frozen=True)
class Expected:
    """What the inventory of `zone` must hold: address -> open ports (empty: a host with none)."""

    zone: str
    ports: Mapping[str, frozenset[int]]


def inventory(plane: ControlPlane, zone: str) -> list[dict[str, Any]]:
    """`outpostctl devices list --zone ZONE --json`."""
    return json.loads(plane.ctl("devices", "list", "--zone", zone, "--json").stdout)


def conservation_problems(plane: ControlPlane, expected: Expected) -> list[str]:
    """Every way the inventory differs from `expected`; empty when it is conserved."""
    devices = inventory(plane, expected.zone)
    problems: list[str] = []
    by_ip = Counter(d["ip"] for d in devices)
    problems += [f"{ip}: {n} devices (one expected)" for ip, n in sorted(by_ip.items()) if n > 1]
    missing = sorted(set(expected.ports) - set(by_ip))
    unexpected = sorted(set(by_ip) - set(expected.ports))
    if missing:
        problems.append(f"{len(missing)} devices missing: {', '.join(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected devices: {', '.join(unexpected)}")
    for device in devices:
        want = expected.ports.get(device["ip"])
        if want is not None and set(device["open_ports"]) != want:
            problems.append(f"{device['ip']}: open ports {sorted(device['open_ports'])}, expected {sorted(want)}")
    endpoints = Endpoints(gateway=plane.live_gateway().ready["admin"], token=plane.admin_token, auth_origin="the test")
    with GatewayClient(endpoints) as gateway:
        for ip in sorted(set(by_ip) & set(expected.ports)):
            history = gateway.get_device(ip, expected.zone).history
            problems += history_problems(ip, [(c.field, c.old_value, c.new_value) for c in history])
    return problems


def history_problems(ip: str, history: list[tuple[str, str, str]]) -> list[str]:
    """A device observed cleanly, however often, has one history entry: (created, "", ip)."""
    want = Counter([(CREATED, "", ip)])
    got = Counter(history)
    if got == want:
        return []
    extra = sorted((got - want).elements())
    absent = sorted((want - got).elements())
    parts = [f"{ip}: history differs from one clean observation"]
    if extra:
        parts.append(f"extra {extra}")
    if absent:
        parts.append(f"missing {absent}")
    return ["; ".join(parts)]


def assert_conserved(plane: ControlPlane, expected: Expected) -> None:
    """Fail with every problem if the inventory is not exactly `expected`, each result once."""
    problems = conservation_problems(plane, expected)
    assert not problems, "inventory is not conserved:\n  " + "\n  ".join(problems)
