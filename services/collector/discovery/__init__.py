"""The collector's discovery engine: scan targets with bounded concurrency and stream live hosts.

The job runner builds a `DiscoveryPlan` (see `to_proto.plan_from_assignment`), iterates
`discover(plan, host_keys=...)` and batches the `DeviceObservation`s it yields.
"""

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
