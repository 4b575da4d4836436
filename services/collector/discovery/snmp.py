"""The SNMP probe: system facts and the interface table, with the job's v2c or v3 credential.

One pysnmp engine serves the whole run (`SnmpProber`): it holds one UDP socket, shares
v3 engine-ID discovery between requests, and is closed when the run ends (or is
cancelled). Per host: one GET of sysName, sysDescr, sysObjectID, sysUpTime and
snmpEngineID, then GETBULK walks of the ifTable/ifXTable columns we report and of the
IPv4 address table. OIDs are numeric and MIB lookup is off: no MIB files are loaded.

An agent that answers, even with a v3 authentication report, proves the host is there.
No answer at all (a wrong v2c community is silently dropped by agents) is a note, never
an error: the credential may simply not belong to this host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pysnmp.entity import config  # type: ignore[import-untyped]
from pysnmp.hlapi.v3arch.asyncio import (  # type: ignore[import-untyped]
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind  # type: ignore[import-untyped]
from pysnmp.proto.rfc1902 import ObjectIdentifier, OctetString  # type: ignore[import-untyped]
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject  # type: ignore[import-untyped]

from services.collector.discovery.host_facts import format_mac
from services.collector.discovery.model import (
    NetworkInterface,
    SnmpCredential,
    SnmpFacts,
    SnmpOutcome,
    SnmpV2cCredential,
    SnmpV3Credential,
)

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SNMP_ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
SYSTEM_OIDS = (SYS_NAME, SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SNMP_ENGINE_ID)

IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_SPEED = (1, 3, 6, 1, 2, 1, 2, 2, 1, 5)
IF_PHYS_ADDRESS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 6)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_HIGH_SPEED = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15)
IP_AD_ENT_IF_INDEX = (1, 3, 6, 1, 2, 1, 4, 20, 1, 2)
IP_AD_ENT_NET_MASK = (1, 3, 6, 1, 2, 1, 4, 20, 1, 3)
WALKED_COLUMNS = (IF_DESCR, IF_SPEED, IF_PHYS_ADDRESS, IF_NAME, IF_HIGH_SPEED, IP_AD_ENT_IF_INDEX, IP_AD_ENT_NET_MASK)

MAX_REPETITIONS = 16
MAX_ROWS = 4096
RETRIES = 1
GAUGE32_MAX = 4_294_967_295

_AUTH_PROTOCOLS = {
    "": config.USM_AUTH_NONE,
    "MD5": config.USM_AUTH_HMAC96_MD5,
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
# AES192/AES256 are the Blumenthal key extension (net-snmp and most agents); the
# "C" variants are the Reeder extension some Cisco devices use.
_PRIV_PROTOCOLS = {
    "": config.USM_PRIV_NONE,
    "DES": config.USM_PRIV_CBC56_DES,
    "3DES": config.USM_PRIV_CBC168_3DES,
    "AES": config.USM_PRIV_CFB128_AES,
    "AES128": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": config.USM_PRIV_CFB192_AES,
    "AES256C": config.USM_PRIV_CFB256_AES,
}
# Error indications that mean an agent answered (a v3 report), just not with data.
_AGENT_REPORTS = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.UnknownEngineID,
    errind.NotInTimeWindow,
    errind.UnsupportedSecurityLevel,
    errind.DecryptionError,
    errind.ReportPduReceived,
)


class SnmpProber:
    """Queries hosts with one credential over one pysnmp engine; `close()` when done."""

    def __init__(self, credential: SnmpCredential, *, port: int, timeout: float, retries: int = RETRIES) -> None:
        self._engine = SnmpEngine()
        self._auth = _auth_data(credential)
        self._port = port
        self._timeout = timeout
        self._retries = retries

    def close(self) -> None:
        self._engine.close_dispatcher()

    async def query(self, ip: str) -> SnmpOutcome:
        transport_class = Udp6TransportTarget if ":" in ip else UdpTransportTarget
        target = await transport_class.create((ip, self._port), timeout=self._timeout, retries=self._retries)
        error, status, _, var_binds = await get_cmd(
            self._engine,
            self._auth,
            target,
            ContextData(),
            *(ObjectType(ObjectIdentity(oid)) for oid in SYSTEM_OIDS),
            lookupMib=False,
        )
        if error is not None:
            if isinstance(error, errind.RequestTimedOut):
                return SnmpOutcome(False, note="snmp: no answer (wrong credential, or no agent)")
            answered = isinstance(error, _AGENT_REPORTS)
            return SnmpOutcome(answered, note=f"snmp: {_describe(error)}")
        if status:
            return SnmpOutcome(True, note=f"snmp: agent error {status.prettyPrint()}")
        values = {str(name): value for name, value in var_binds}
        columns = await self._walk(target, WALKED_COLUMNS)
        facts = SnmpFacts(
            sys_name=_text(values.get(SYS_NAME)),
            sys_descr=_text(values.get(SYS_DESCR)),
            sys_object_id=_oid(values.get(SYS_OBJECT_ID)),
            sys_uptime_centiseconds=_integer(values.get(SYS_UPTIME)),
            engine_id=_hex(values.get(SNMP_ENGINE_ID)),
            interfaces=interfaces_from_columns(columns),
        )
        return SnmpOutcome(True, facts=facts)

    async def _walk(
        self, target: Any, columns: Sequence[tuple[int, ...]]
    ) -> dict[tuple[int, ...], dict[tuple[int, ...], Any]]:
        """Each column's rows, index -> value, walked side by side with GETBULK."""
        rows: dict[tuple[int, ...], dict[tuple[int, ...], Any]] = {column: {} for column in columns}
        cursor = {column: column for column in columns}
        fetched = 0
        while cursor and fetched < MAX_ROWS:
            active = list(cursor)
            error, status, _, var_binds = await bulk_cmd(
                self._engine,
                self._auth,
                target,
                ContextData(),
                0,
                MAX_REPETITIONS,
                *(ObjectType(ObjectIdentity(ObjectIdentifier(cursor[column]))) for column in active),
                lookupMib=False,
            )
            if error is not None or status or not var_binds:
                break
            finished: set[tuple[int, ...]] = set()
            for position, (name, value) in enumerate(var_binds):
                column = active[position % len(active)]
                if column in finished:
                    continue
                oid = tuple(name)
                if isinstance(value, EndOfMibView) or oid[: len(column)] != column or oid <= cursor[column]:
                    finished.add(column)
                    continue
                rows[column][oid[len(column) :]] = value
                cursor[column] = oid
                fetched += 1
            for column in finished:
                cursor.pop(column, None)
        return rows


def interfaces_from_columns(
    columns: dict[tuple[int, ...], dict[tuple[int, ...], Any]],
) -> tuple[NetworkInterface, ...]:
    """NetworkInterfaces by ifIndex from the walked columns (values as pysnmp returns them)."""
    descr, speed, phys = columns.get(IF_DESCR, {}), columns.get(IF_SPEED, {}), columns.get(IF_PHYS_ADDRESS, {})
    name, high_speed = columns.get(IF_NAME, {}), columns.get(IF_HIGH_SPEED, {})
    addresses: dict[int, list[str]] = {}
    masks = columns.get(IP_AD_ENT_NET_MASK, {})
    for address_index, if_index in columns.get(IP_AD_ENT_IF_INDEX, {}).items():
        address = ".".join(str(part) for part in address_index)
        mask = masks.get(address_index)
        prefix = f"/{_prefix_length(mask)}" if mask is not None else ""
        addresses.setdefault(_integer(if_index), []).append(address + prefix)
    interfaces = []
    for index in sorted(set(descr) | set(name) | set(phys), key=lambda key: key):
        if len(index) != 1:
            continue
        if_index = index[0]
        bps = _integer(speed.get(index))
        if bps == GAUGE32_MAX and index in high_speed:
            bps = _integer(high_speed[index]) * 1_000_000
        description = _text(descr.get(index))
        interfaces.append(
            NetworkInterface(
                name=_text(name.get(index)) or description,
                mac=_mac(phys.get(index)),
                addresses=tuple(addresses.get(if_index, ())),
                description=description,
                speed_bps=bps,
            )
        )
    return tuple(interfaces)


def _auth_data(credential: SnmpCredential) -> Any:
    if isinstance(credential, SnmpV2cCredential):
        return CommunityData(credential.community, mpModel=1)  # noqa: S508 (v2c is what the job asked for)
    assert isinstance(credential, SnmpV3Credential)
    auth = credential.auth_protocol.upper()
    priv = credential.priv_protocol.upper()
    return UsmUserData(
        credential.username,
        authKey=credential.auth_key or None,
        privKey=credential.priv_key or None,
        authProtocol=_AUTH_PROTOCOLS[auth],
        privProtocol=_PRIV_PROTOCOLS[priv],
    )


def _absent(value: Any) -> bool:
    return value is None or isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView)


def _text(value: Any) -> str:
    if _absent(value):
        return ""
    if isinstance(value, OctetString):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00").strip()
    return str(value.prettyPrint())


def _hex(value: Any) -> str:
    return "" if _absent(value) or not isinstance(value, OctetString) else bytes(value).hex()


def _mac(value: Any) -> str:
    return "" if _absent(value) or not isinstance(value, OctetString) else format_mac(bytes(value))


def _oid(value: Any) -> str:
    return "" if _absent(value) else ".".join(str(part) for part in tuple(value))


def _integer(value: Any) -> int:
    if _absent(value):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _prefix_length(mask: Any) -> int:
    """Bits set in a netmask given as pysnmp IpAddress (4 octets)."""
    try:
        return sum(bin(octet).count("1") for octet in bytes(mask.asOctets()))
    except (AttributeError, TypeError, ValueError):
        return 32


def _describe(error: Any) -> str:
    if isinstance(error, errind.UnknownUserName | errind.WrongDigest | errind.DecryptionError):
        return f"authentication failed ({error})"
    return str(error)
