"""The collector's discovery engine: scan targets with bounded concurrency and stream live hosts.

The job runner builds a `DiscoveryPlan` (see `to_proto.plan_from_assignment`), iterates
`discover(plan, host_keys=...)` and batches the `DeviceObservation`s it yields.

The names below are loaded on first use (PEP 562), so that a scan worker process
(`scan_worker.py`) can import the connect scan alone without the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.collector.discovery.engine import discover
    from services.collector.discovery.host_keys import HostKeyStore
    from services.collector.discovery.model import (
        DeadlineExceeded,
        DeviceObservation,
        DiscoveryPlan,
        HostAudit,
        HttpInfo,
        NetworkInterface,
        PortObservation,
        Progress,
        SnmpFacts,
        SnmpV2cCredential,
        SnmpV3Credential,
        SshCredential,
        SshInfo,
        TlsInfo,
    )

__all__ = [
    "DeadlineExceeded",
    "DeviceObservation",
    "DiscoveryPlan",
    "HostAudit",
    "HostKeyStore",
    "HttpInfo",
    "NetworkInterface",
    "PortObservation",
    "Progress",
    "SnmpFacts",
    "SnmpV2cCredential",
    "SnmpV3Credential",
    "SshCredential",
    "SshInfo",
    "TlsInfo",
    "discover",
]
_HOME = {"discover": "engine", "HostKeyStore": "host_keys"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME.get(name, 'model')}"), name)
    globals()[name] = value
    return value
