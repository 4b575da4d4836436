"""Which devices a `devices list` asks for: the filters of ListDevices, checked and normalised.

Every filter given must hold. The values are normalised here (the CIDR's canonical text,
the service name lowercased) so a page token's filter digest does not depend on how a
client spelled them (`outpost.paging`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from outpost import errors

MAX_PORT = 65535


@dataclass(frozen=True)
class DeviceFilter:
    zone: str | None = None
    include_retired: bool = False
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int = 0
    """An open port (0: any)."""
    service: str = ""
    """An open port's service name, lowercase ("": any)."""
    seen_since: datetime | None = None

    def digest_fields(self) -> dict[str, Any]:
        """The filters as plain values, for the page token's digest."""
        return {
            "zone": self.zone,
            "include_retired": self.include_retired,
            "cidr": str(self.cidr) if self.cidr else "",
            "port": self.port,
            "service": self.service,
            "seen_since": self.seen_since.isoformat() if self.seen_since else "",
        }


def device_filter(
    *,
    zone: str | None = None,
    include_retired: bool = False,
    cidr: str = "",
    port: int = 0,
    service: str = "",
    seen_since: datetime | None = None,
) -> DeviceFilter:
    """The filter for these request values; InvalidArgument with what is wrong."""
    return DeviceFilter(
        zone=zone,
        include_retired=include_retired,
        cidr=parse_cidr(cidr) if cidr.strip() else None,
        port=_port(port),
        service=service.strip().lower(),
        seen_since=seen_since,
    )


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """ "10.0.0.0/24" (or one address, a /32 or /128); host bits set are refused, not masked."""
    value = text.strip()
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise errors.InvalidArgument(f"cidr {value[:64]!r} is not a network like 10.0.0.0/24") from None
        raise errors.InvalidArgument(f"cidr {value[:64]!r} has host bits set; did you mean {loose}?") from None


def _port(port: int) -> int:
    if not 0 <= port <= MAX_PORT:
        raise errors.InvalidArgument(f"port {port} is not a port number (1-{MAX_PORT})")
    return port
