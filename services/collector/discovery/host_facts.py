"""Parse what a host reports about itself: /etc/os-release, /proc files, `ip -o` output, MACs.

Pure functions over text, used by the SSH audit (and `format_mac` by SNMP too). Each one
accepts whatever a real host printed, ignores lines it does not understand, and returns
an empty value rather than raising: a fact we could not parse is a missing fact.
"""

from __future__ import annotations

import re
import shlex

from services.collector.discovery.model import NetworkInterface

_IP_LINK = re.compile(r"^\d+:\s+(?P<name>[^:\s@]+)(?:@\S+)?:\s.*?link/\S+(?:\s+(?P<mac>[0-9A-Fa-f:]+))?")
_IP_ADDR = re.compile(r"^\d+:\s+(?P<name>[^\s@]+)\s+(?P<family>inet6?)\s+(?P<address>\S+)")
_SYS_CLASS_NET = re.compile(r"^/sys/class/net/(?P<name>[^/]+)/address:(?P<mac>[0-9A-Fa-f:]+)\s*$")


def format_mac(raw: bytes | str) -> str:
    """A hardware address as lower-case "aa:bb:cc:dd:ee:ff"; "" when there is none.

    Bytes come from SNMP (ifPhysAddress); text from `ip link` or sysfs, in any case and
    with ":" or "-" separators.
    """
    if isinstance(raw, str):
        text = raw.strip()
        parts = re.split(r"[:\-.]", text)
        if len(parts) > 1 and all(1 <= len(part) <= 2 for part in parts):
            digits = "".join(part.zfill(2) for part in parts)
        elif len(parts) > 1 and all(len(part) == 4 for part in parts):  # Cisco "aabb.ccdd.eeff"
            digits = "".join(parts)
        else:
            digits = text
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            return ""
    return ":".join(f"{octet:02x}" for octet in raw)


def is_real_mac(mac: str) -> bool:
    """False for "" and all-zero addresses (loopback, tunnels)."""
    return bool(mac) and any(part != "00" for part in mac.split(":"))


def parse_os_release(text: str) -> tuple[str, str]:
    """(NAME, VERSION_ID or else VERSION) from os-release's shell-style assignments."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [raw.strip("\"'")]
        values[key] = " ".join(words)
    return values.get("NAME", ""), values.get("VERSION_ID") or values.get("VERSION", "")


def parse_meminfo(text: str) -> int:
    """MemTotal in bytes (the file says kB, meaning KiB)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                unit = fields[2].lower() if len(fields) > 2 else "b"
                return int(fields[1]) * (1024 if unit == "kb" else 1)
    return 0


def parse_uptime(text: str) -> int:
    """Whole seconds since boot from /proc/uptime ("12345.67 23456.78")."""
    try:
        return int(float(text.split(maxsplit=1)[0]))
    except (IndexError, ValueError):
        return 0


def parse_cpu_count(nproc_output: str, cpuinfo: str = "") -> int:
    """`nproc`'s number, else the "processor" lines of /proc/cpuinfo."""
    first = nproc_output.strip().split("\n", 1)[0].strip()
    if first.isdigit():
        return int(first)
    return sum(1 for line in cpuinfo.splitlines() if re.match(r"^processor\s*:", line))


def parse_ip_link(text: str) -> dict[str, str]:
    """Interface name -> MAC from `ip -o link`, in the order listed."""
    interfaces: dict[str, str] = {}
    for line in text.splitlines():
        match = _IP_LINK.match(line)
        if match:
            interfaces[match["name"]] = format_mac(match["mac"] or "")
    return interfaces


def parse_ip_addr(text: str) -> dict[str, list[str]]:
    """Interface name -> addresses with prefix ("10.0.0.5/24") from `ip -o addr`."""
    addresses: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _IP_ADDR.match(line)
        if match:
            addresses.setdefault(match["name"], []).append(match["address"])
    return addresses


def parse_sys_class_net(text: str) -> dict[str, str]:
    """Interface name -> MAC from `grep -H . /sys/class/net/*/address` (when `ip` is missing)."""
    interfaces: dict[str, str] = {}
    for line in text.splitlines():
        match = _SYS_CLASS_NET.match(line)
        if match:
            interfaces[match["name"]] = format_mac(match["mac"])
    return interfaces


def build_interfaces(macs: dict[str, str], addresses: dict[str, list[str]]) -> tuple[NetworkInterface, ...]:
    names = list(dict.fromkeys([*macs, *addresses]))
    return tuple(
        NetworkInterface(name=name, mac=macs.get(name, ""), addresses=tuple(addresses.get(name, ()))) for name in names
    )
