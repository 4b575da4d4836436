"""Which service answers on a port, by nmap's fingerprints: label what was heard, probe further.

Theory of operation
-------------------
The banner step (`banners.grab_banner`) holds the conversations Outpost has always had:
the greeting of a server that speaks first (nmap's `NULL` probe), `GET /` (nmap's
`GetRequest`, with a Host header so virtual hosts answer with their own title) and a TLS
handshake (nmap's `SSLSessionReq`/`TLSSessionReq`). `ServiceRecognizer.label` matches
what those conversations heard against the patterns of the probe they correspond to —
no extra packet. Only when that gives no hard match (a silent server that is not HTTP,
a greeting nmap only softmatches, an unknown greeting) does `probe_further` send nmap's
request probes for the port, one connection each, in nmap's order (`tcp_sequence`: the
probes that list the port, then the others with `rarity <= intensity`; after a
softmatch only probes that can name that service), until one hard-matches or the
port's time budget is spent.

Budget. A port's recognition has `BUDGET_FACTOR` x the probe timeout in all, counted from
the start of its banner conversation (which alone never took more than 2 x timeout);
each further probe waits for its answer at most a quarter of the timeout (nmap waits
`totalwaitms`, 5-6 s: too long for a sweep), and stops reading on EOF or when the answer
pauses for `QUIET_SECONDS`. A port our own parsers named (HTTP, SSH) gets no further
probes: its name is known, only product and version could be missing. Probes left untried when the budget runs
out are counted in `RecognitionStats.budget_exhausted`, reported with the run.

Names. `service` is nmap's name, except that HTTP over TLS is "https" (nmap says
"ssl/http"), as Outpost has always called it. Product and version come from the match's
`p/` and `v/` templates.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, replace

from services.collector.discovery.model import PortObservation
from services.collector.discovery.service_probes import (
    DEFAULT_INTENSITY,
    Probe,
    ProbeDatabase,
    Recognition,
)

BUDGET_FACTOR = 2.0
PROBE_WAIT_FACTOR = 0.25
QUIET_SECONDS = 0.1
MAX_READ = 64 * 1024

# The probes the banner conversations stand for, so they are not sent a second time.
TLS_PROBES = frozenset({"SSLSessionReq", "TLSSessionReq", "SSLv23SessionReq"})


@dataclass
class RecognitionStats:
    """Per run: how recognition went, for the run's `discovery_finished` line."""

    ports: int = 0
    recognised: int = 0
    softmatched: int = 0
    unrecognised: int = 0
    probes_sent: int = 0
    budget_exhausted: int = 0

    def as_log(self) -> dict[str, int]:
        return {f"service_{key}": value for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class Heard:
    """What a banner conversation heard, and which nmap probe it stands for."""

    data: bytes
    probe: str
    tls: bool = False


class ServiceRecognizer:
    """nmap's probe database plus the intensity; shared by every run of the collector."""

    def __init__(self, database: ProbeDatabase, intensity: int = DEFAULT_INTENSITY) -> None:
        if not 0 <= intensity <= 9:
            raise ValueError(f"intensity {intensity} is outside 0-9")
        self.database = database
        self.intensity = intensity

    def label(self, heard: Heard) -> Recognition | None:
        probe = self.database.probe(heard.probe)
        if probe is None or not heard.data:
            return None
        return self.database.match_response(probe, heard.data)

    async def recognise(
        self,
        ip: str,
        port: int,
        *,
        timeout: float,
        started: float,
        observation: PortObservation | None,
        heard: Heard | None,
        sent: frozenset[str],
        stats: RecognitionStats,
    ) -> PortObservation | None:
        """The observation with nmap's service, product and version, when they could be learned.

        `started` is `time.monotonic()` when the port's banner conversation began; `sent`
        names the nmap probes that conversation stood for (they are not sent again).
        """
        stats.ports += 1
        found = self.label(heard) if heard is not None else None
        tls = heard.tls if heard is not None else False
        # A port our own parsers named (HTTP, SSH) is not probed further: its name is known.
        named = observation is not None and (observation.http is not None or observation.ssh is not None)
        if (found is None or found.soft) and not (tls or named) and port not in self.database.excluded_ports:
            deadline = started + BUDGET_FACTOR * timeout
            found = (
                await self.probe_further(
                    ip, port, timeout=timeout, deadline=deadline, sent=sent, soft=found, stats=stats
                )
                or found
            )
        if found is None:
            stats.unrecognised += 1
            return observation
        if found.soft:
            stats.softmatched += 1
        else:
            stats.recognised += 1
        return apply(observation, port, found, tls=tls)

    async def probe_further(
        self,
        ip: str,
        port: int,
        *,
        timeout: float,
        deadline: float,
        sent: frozenset[str],
        soft: Recognition | None,
        stats: RecognitionStats,
    ) -> Recognition | None:
        """nmap's request probes for the port until a hard match or the deadline."""
        sequence = [
            probe
            for probe in self.database.tcp_sequence(port, self.intensity)
            if probe.name not in sent and (soft is None or _can_name(probe, soft.service))
        ]
        for probe in sequence:
            remaining = deadline - time.monotonic()
            if remaining <= 0.01:
                stats.budget_exhausted += 1  # probes were left: counted, not cut silently
                return soft
            wait = min(remaining, timeout * PROBE_WAIT_FACTOR, probe.total_wait_ms / 1000)
            stats.probes_sent += 1
            found = await self._exchange(ip, port, probe, wait)
            if found is not None and not found.soft:
                return found
            soft = soft or found
        return soft

    async def _exchange(self, ip: str, port: int, probe: Probe, wait: float) -> Recognition | None:
        """Send one probe on a new connection; match what came back within `wait`, once.

        Reading ends at EOF, at MAX_READ, after a `QUIET_SECONDS` pause once something
        came, or at `wait`; the answer is matched once then (matching a large answer
        against a few thousand patterns costs tens of milliseconds of CPU).
        """
        data = bytearray()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError, EOFError):
            async with asyncio.timeout(wait):
                reader, writer = await asyncio.open_connection(ip, port, limit=MAX_READ)
                try:
                    if probe.payload:
                        writer.write(probe.payload)
                    while len(data) < MAX_READ:
                        try:
                            async with asyncio.timeout(QUIET_SECONDS if data else None):
                                chunk = await reader.read(MAX_READ - len(data))
                        except TimeoutError:
                            break  # the answer paused: take what came
                        if not chunk:
                            break
                        data += chunk
                finally:
                    writer.transport.abort()
        return self.database.match_response(probe, bytes(data))


def _can_name(probe: Probe, service: str) -> bool:
    """nmap's `serviceIsPossible`: the probe has a pattern for that service."""
    return any(match.service == service for match in probe.matches)


def apply(observation: PortObservation | None, port: int, found: Recognition, *, tls: bool) -> PortObservation:
    """An observation carrying the recognised service (and product/version of a hard match)."""
    service = "https" if tls and found.service == "http" else found.service
    base = observation or PortObservation(port=port)
    if found.soft:
        # A softmatch names the service only; the HTTP and SSH parsers' names stand.
        known = base.http is not None or base.ssh is not None
        return replace(base, service=base.service if known and base.service else service)
    return replace(base, service=service, service_product=found.product, service_version=found.version)
