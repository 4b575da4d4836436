"""The discovery engine: scan a plan's targets and stream each live host as soon as it is done.

Theory of operation
-------------------
`discover()` starts one runner task and yields what it puts on a bounded results queue,
so devices stream while the scan runs and a slow consumer slows the scan instead of
piling up memory. The runner:

1. parses targets and exclusions, resolves host names, and builds the `TargetSet`
   (exact count, lazy addresses);
2. admits hosts one at a time, at most `concurrency` of them in progress; each admitted
   host's ports are appended to the `PortFeed`, from which a fixed pool of connect
   workers (no task per port) takes (host, port) pairs, host after host
   (`connect_scan.py`);
3. per host, waits for its TCP results while ICMP and SNMP run beside them. A host that
   answered any of them (echo reply, a port open *or refused*, an SNMP answer) is alive;
   for a live host, reverse DNS, banners of its open ports and the SSH probe run
   concurrently; then its `DeviceObservation` goes on the queue.

Every probe holds one slot of the run's `ProbeLimiter` while its socket is open: at most
`concurrency` sockets in flight, at most `rate_per_second` new ones per second. The
deadline is one `asyncio.timeout` around the runner; when it passes, the runner is
cancelled like on a job cancel, and `discover()` raises `DeadlineExceeded` after the
devices found so far. Cancelling the consumer (or `aclose()` on the iterator) cancels the
runner and waits for it: every probe closes its socket in a `finally`, so nothing is left
open when `discover()` returns.

A probe that fails unexpectedly is logged with its traceback and becomes a note on the
host ("<probe>: internal error"); it never stops the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import structlog

from outpost.errors import OutpostError
from outpost.targets import TargetSet, host_names, parse_target
from services.collector.discovery import banners, icmp
from services.collector.discovery.connect_scan import HostScan, PortFeed, connect_worker
from services.collector.discovery.host_facts import is_real_mac
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.limiter import ProbeLimiter
from services.collector.discovery.model import (
    DeadlineExceeded,
    DeviceObservation,
    DiscoveryPlan,
    PortObservation,
    PortState,
    Progress,
    SnmpOutcome,
    SshOutcome,
)
from services.collector.discovery.recognition import RecognitionStats, ServiceRecognizer
from services.collector.discovery.scan_workers import ScanWorkers

if TYPE_CHECKING:
    import dns.asyncresolver

    from outpost.targets import IPAddress
    from services.collector.discovery.snmp import SnmpProber

# pysnmp and asyncssh cost the collector ~13 MiB of memory, dnspython ~6 MiB: they are
# imported only by a run that uses the snmp, ssh or dns probe (dnspython also for a job's
# resolver or host-name targets) (bench/collector_scan_rss.py).

log = structlog.get_logger(__name__)

PROGRESS_INTERVAL = 0.25
# Worker processes pay ~0.1 s to start and ~20 MiB each: only for scans this large or larger.
MIN_PAIRS_FOR_WORKERS = 1024
# The share of `concurrency` the worker processes' connects hold for the TCP stage; the
# rest is left to the probes that run in process (banners, ICMP, SNMP, DNS, SSH, rescans).
WORKERS_SHARE = 0.75
NO_RESOLVER_NOTE = "dns: the collector has no resolver configured; set the job's DNS resolver"
T = TypeVar("T")


async def discover(
    plan: DiscoveryPlan,
    *,
    host_keys: HostKeyStore,
    on_progress: Callable[[Progress], None] | None = None,
    recognizer: ServiceRecognizer | None = None,
    wall_clock: Callable[[], float] = time.time,
    scan_workers: int = 1,
) -> AsyncGenerator[DeviceObservation, None]:
    """Yield each live host of `plan` as soon as its probes finish.

    With a `recognizer` (nmap's fingerprints, `recognition.py`) the banner probe names
    each open port's service, product and version; without one, only HTTP, TLS and SSH
    are recognised and other ports are named by their number.

    Raises `outpost.errors.InvalidArgument` for targets that do not parse or expand past
    the limit, and `DeadlineExceeded` when `plan.deadline` passes (after yielding what was
    found). `on_progress` is called once the targets are expanded (with the total), then
    at most every 0.25 s, and once at the end. Each device's
    `observed_at_unix_ms` is `wall_clock` (the collector's clock) when its probes finished.

    `scan_workers` > 1 runs the TCP connects in that many worker processes, whole hosts
    each (`scan_workers.py`), when the run has no rate limit, at least
    `MIN_PAIRS_FOR_WORKERS` (host, port) pairs and 4 connect slots per worker; the
    results are the same as in one process.

    To stop early, leave the loop inside `contextlib.aclosing(discover(...))` (or cancel
    the consuming task): the scan stops and every socket is closed before that returns.
    """
    run = _Run(plan, host_keys, on_progress, recognizer, wall_clock, scan_workers=scan_workers)
    runner = asyncio.create_task(run.run(), name="discovery-runner")
    try:
        while True:
            item = await run.results.get()
            if item is None:
                break
            yield item
        if run.error is not None:
            raise run.error
    finally:
        if not runner.done():
            runner.cancel()
        await asyncio.wait([runner])


class _Run:
    def __init__(
        self,
        plan: DiscoveryPlan,
        host_keys: HostKeyStore,
        on_progress: Callable[[Progress], None] | None,
        recognizer: ServiceRecognizer | None = None,
        wall_clock: Callable[[], float] = time.time,
        *,
        scan_workers: int = 1,
    ) -> None:
        self.plan = plan
        self._scan_workers = scan_workers
        self._pool: ScanWorkers | None = None
        self._group: asyncio.TaskGroup | None = None
        self._recognizer = recognizer
        self._recognition = RecognitionStats()
        self._wall_clock = wall_clock
        self.results: asyncio.Queue[DeviceObservation | None] = asyncio.Queue(plan.batch_max_devices)
        self.error: Exception | None = None
        self._host_keys = host_keys
        self._on_progress = on_progress
        self._limiter = ProbeLimiter(plan.concurrency, plan.rate_per_second)
        self._host_slots = asyncio.Semaphore(plan.concurrency)
        self._tcp_ports = plan.ports if "tcp" in plan.probes else ()
        self._feed = PortFeed(self._tcp_ports)
        self._icmp = icmp.current_icmp_access() if "icmp" in plan.probes else icmp.IcmpAccess.NOT_PERMITTED
        self._resolver: dns.asyncresolver.Resolver | None = None
        if "dns" in plan.probes or plan.dns_resolver:
            import dns.resolver

            from services.collector.discovery import reverse_dns

            try:
                self._resolver = reverse_dns.make_resolver(plan.dns_resolver, plan.timeout)
            except dns.resolver.NoResolverConfiguration:
                log.warning("dns_resolver_missing", note=NO_RESOLVER_NOTE)
        self._snmp: SnmpProber | None = None
        self._total = 0
        self._done = 0
        self._found = 0
        self._last_progress = 0.0

    async def run(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.plan.deadline) as deadline:
                await self._scan()
        except TimeoutError as exc:
            if deadline.expired():
                self.error = DeadlineExceeded(
                    f"the discovery deadline of {self.plan.deadline:g}s passed after "
                    f"{self._done} of {self._total} targets"
                )
            else:
                self.error = exc
        except OutpostError as exc:  # bad targets: the operator's to fix, no traceback
            self.error = exc
        except Exception as exc:
            log.exception("discovery_failed")
            self.error = _single(exc)
        log.info(
            "discovery_finished",
            targets_done=self._done,
            targets_total=self._total,
            devices_found=self._found,
            seconds=round(time.monotonic() - started, 3),
            error=str(self.error) if self.error else None,
            service_recognition=self._recognizer is not None,
            scan_workers=self._pool.count if self._pool is not None else 0,
            scan_workers_lost=self._pool.lost if self._pool is not None else 0,
            **self._recognition.as_log(),
        )
        await self.results.put(None)

    async def _scan(self) -> None:
        targets = await self._targets()
        self._total = len(targets)
        log.info(
            "discovery_started", targets_total=self._total, ports=len(self.plan.ports), probes=sorted(self.plan.probes)
        )
        # The total is known now: say so before the first host finishes (a /16 of silent
        # hosts would otherwise show "0/0 targets" for as long as the first timeout).
        self._report_progress(final=True)
        if "icmp" in self.plan.probes and self._icmp is icmp.IcmpAccess.NOT_PERMITTED:
            log.warning("icmp_not_permitted", note=icmp.NOT_PERMITTED_NOTE)
        elif "icmp" in self.plan.probes:
            log.info("icmp_access_chosen", access=self._icmp.value)
        if "snmp" in self.plan.probes and self.plan.snmp is not None:
            from services.collector.discovery.snmp import SnmpProber

            self._snmp = SnmpProber(self.plan.snmp, port=self.plan.snmp_port, timeout=self.plan.timeout)
        reserved = 0
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                if workers := self._pool_size():
                    share = int(self.plan.concurrency * WORKERS_SHARE) // workers * workers
                    while reserved < share and self._limiter.try_acquire():  # all free: nothing has started
                        reserved += 1
                    self._pool = await self._start_pool(workers, reserved)
                if self._pool is None:
                    for _ in range(reserved):
                        self._limiter.release()
                    reserved = 0
                    self._start_connect_workers(self._total)
                for ip in targets:
                    await self._host_slots.acquire()
                    host = HostScan(ip, pending=len(self._tcp_ports))
                    if self._pool is None:
                        self._feed.add(host)
                    elif not self._pool.submit(host):
                        self._scan_in_process([host])
                    group.create_task(self._scan_host(host))
                self._feed.close()
                if self._pool is not None:
                    self._pool.no_more_hosts()
        finally:
            self._group = None  # the run is ending: a worker lost now has nobody to hand hosts to
            if self._pool is not None:
                await self._pool.close()
            for _ in range(reserved):
                self._limiter.release()
            if self._snmp is not None:
                self._snmp.close()
        self._report_progress(final=True)

    async def _start_pool(self, workers: int, slots: int) -> ScanWorkers | None:
        """The run's worker processes, or None (logged) when they cannot be started: scan in process."""
        pool = ScanWorkers(workers, self._tcp_ports, slots, self.plan.timeout, on_lost=self._scan_in_process)
        try:
            await pool.start()
        except OSError as exc:
            log.warning("scan_workers_unavailable", error=str(exc), note="this run scans in the collector process")
            await pool.close()
            return None
        return pool

    def _pool_size(self) -> int:
        """How many worker processes this run uses for its connects (0: none, all in process)."""
        plan = self.plan
        pairs = self._total * len(self._tcp_ports)
        if (
            self._scan_workers < 2
            or plan.rate_per_second
            or pairs < MIN_PAIRS_FOR_WORKERS
            or plan.concurrency * WORKERS_SHARE < 4 * self._scan_workers
        ):
            return 0
        return self._scan_workers

    def _start_connect_workers(self, hosts: int) -> None:
        """In-process connect workers for `hosts` hosts' ports; they end when the feed is closed and drained."""
        assert self._group is not None
        for _ in range(min(self.plan.concurrency, hosts * len(self._tcp_ports))):
            self._group.create_task(connect_worker(self._feed, self._limiter, self.plan.timeout))

    def _scan_in_process(self, hosts: list[HostScan]) -> None:
        """Connect to these hosts' ports here: their worker process died (or none is left)."""
        if self._group is None:
            return
        for host in hosts:
            self._feed.add(host)
        self._start_connect_workers(len(hosts))

    async def _targets(self) -> TargetSet:
        wanted = [parse_target(text) for text in self.plan.targets]
        unwanted = [parse_target(text) for text in self.plan.exclusions]
        names = host_names([*wanted, *unwanted])
        resolved = {}
        if names:
            lookups = [self._forward_lookup(name) for name in names]
            for name, addresses in zip(names, await asyncio.gather(*lookups), strict=True):
                if addresses:
                    resolved[name] = addresses
                else:
                    log.warning("target_unresolved", target=name)
        return TargetSet.build(wanted, unwanted, resolved)

    async def _forward_lookup(self, name: str) -> tuple[IPAddress, ...]:
        from services.collector.discovery import reverse_dns

        async with self._limiter.slot():
            return await reverse_dns.forward_lookup(name, self._resolver, self.plan.timeout)

    async def _scan_host(self, host: HostScan) -> None:
        try:
            device = await self._observe(host)
            if device is not None:
                device = replace(device, observed_at_unix_ms=int(self._wall_clock() * 1000))
                self._found += 1
                await self.results.put(device)
        finally:
            self._done += 1
            self._host_slots.release()
            self._report_progress()

    async def _observe(self, host: HostScan) -> DeviceObservation | None:
        """The host's observation, or None when nothing showed it is alive."""
        plan = self.plan
        notes: list[str] = []
        ping_rtt, snmp_outcome = await self._liveness(host, notes)
        alive_by = _alive_by(ping_rtt is not None, host.answered, snmp_outcome.answered)
        if not alive_by:
            return None
        if snmp_outcome.note:
            notes.append(snmp_outcome.note)
        if "snmp" in plan.probes and plan.snmp is None:
            notes.append("snmp: no SNMP credential in the job; skipped")

        open_ports = sorted(host.open_ports)
        ssh_wanted = "ssh" in plan.probes and (plan.ssh_port in open_ports or plan.ssh_port not in self._tcp_ports)
        async with asyncio.TaskGroup() as group:
            name = group.create_task(self._reverse_lookup(host.ip, notes)) if "dns" in plan.probes else None
            grabs = {
                port: group.create_task(self._guarded("banners", self._grab(host.ip, port), notes))
                for port in (open_ports if "banners" in plan.probes else ())
            }
            ssh = group.create_task(self._guarded("ssh", self._probe_ssh(host.ip), notes)) if ssh_wanted else None

        ports = {port: grabs[port].result() if port in grabs else None for port in open_ports}
        observed = {
            port: found or PortObservation(port=port, service=banners.WELL_KNOWN.get(port, ""))
            for port, found in ports.items()
        }
        # Filtered ports are reported as such (nothing else is known of them); closed ports
        # are left out: a port the run scanned and did not list was refused.
        for port in host.filtered_ports:
            observed.setdefault(port, PortObservation(port=port, state=PortState.FILTERED))
        audit = None
        ssh_outcome = ssh.result() if ssh is not None else None
        if ssh_outcome is not None:
            notes.extend(ssh_outcome.notes)
            audit = ssh_outcome.audit
            if ssh_outcome.ssh is not None:
                observed[plan.ssh_port] = _merge_ssh(observed.get(plan.ssh_port), plan.ssh_port, ssh_outcome)
        snmp_facts = snmp_outcome.facts
        interfaces = [*(snmp_facts.interfaces if snmp_facts else ()), *(audit.interfaces if audit else ())]
        return DeviceObservation(
            ip=host.ip,
            alive_by=alive_by,
            hostname=name.result() if name is not None else None,
            rtt_ms=round(ping_rtt if ping_rtt is not None else host.tcp_rtt_ms or 0.0, 3),
            ports=tuple(observed[port] for port in sorted(observed)),
            snmp=snmp_facts,
            audit=audit,
            mac_addresses=tuple(dict.fromkeys(i.mac for i in interfaces if is_real_mac(i.mac))),
            notes=tuple(dict.fromkeys(notes)),
        )

    async def _liveness(self, host: HostScan, notes: list[str]) -> tuple[float | None, SnmpOutcome]:
        """ICMP and SNMP side by side with the host's TCP connects; (echo rtt, SNMP outcome)."""
        async with asyncio.TaskGroup() as group:
            ping = None
            if "icmp" in self.plan.probes:
                ping = group.create_task(self._guarded("icmp", self._ping(host.ip, notes), notes))
            snmp = None
            if self._snmp is not None:
                snmp = group.create_task(self._guarded("snmp", self._query_snmp(host.ip), notes))
            await host.tcp_done.wait()
        ping_rtt = ping.result() if ping is not None else None
        snmp_outcome = snmp.result() if snmp is not None else None
        return ping_rtt, snmp_outcome or SnmpOutcome(answered=False)

    async def _ping(self, ip: str, notes: list[str]) -> float | None:
        while self._icmp is not icmp.IcmpAccess.NOT_PERMITTED:
            access = self._icmp
            try:
                async with self._limiter.slot():
                    return await icmp.ping(ip, self.plan.timeout, access)
            except icmp.IcmpNotPermitted:
                if self._icmp is access:
                    # Refused at run time (root without CAP_NET_RAW): fall back for the run.
                    fallback = icmp.IcmpAccess.NOT_PERMITTED
                    if access is icmp.IcmpAccess.PRIVILEGED:
                        fallback = icmp.unprivileged_access(icmp.current_groups(), icmp.read_ping_group_range())
                    log.warning("icmp_access_downgraded", was=access.value, now=fallback.value)
                    self._icmp = fallback
            except OSError:
                return None
        notes.append(icmp.NOT_PERMITTED_NOTE)
        return None

    async def _query_snmp(self, ip: str) -> SnmpOutcome:
        assert self._snmp is not None
        async with self._limiter.slot():
            return await self._snmp.query(ip)

    async def _reverse_lookup(self, ip: str, notes: list[str]) -> str | None:
        """The host's PTR name, "" when it has none, None when that could not be learned (noted)."""
        if self._resolver is None:
            notes.append(NO_RESOLVER_NOTE)
            return None
        import dns.exception
        import dns.resolver

        from services.collector.discovery import reverse_dns

        try:
            async with self._limiter.slot():
                return await reverse_dns.reverse_lookup(self._resolver, ip)
        except dns.exception.Timeout:
            notes.append("dns: the resolver did not answer in time")
        except dns.resolver.NoNameservers:
            notes.append("dns: the resolver failed to answer (SERVFAIL or refused)")
        except dns.exception.DNSException as exc:
            notes.append(f"dns: {exc}")
        return None

    async def _grab(self, ip: str, port: int) -> PortObservation:
        async with self._limiter.slot():
            return await banners.grab_banner(
                ip,
                port,
                self.plan.timeout,
                ssh_port=self.plan.ssh_port,
                recognizer=self._recognizer,
                stats=self._recognition,
            )

    async def _probe_ssh(self, ip: str) -> SshOutcome:
        from services.collector.discovery import ssh_audit

        async with self._limiter.slot():
            return await ssh_audit.probe_ssh(ip, self.plan.ssh_port, self.plan.ssh, self._host_keys, self.plan.timeout)

    async def _guarded(self, probe: str, work: Awaitable[T], notes: list[str]) -> T | None:
        """Run one probe; an unexpected failure is logged and noted, never fatal to the run."""
        try:
            return await work
        except Exception:
            log.exception("probe_failed", probe=probe)
            notes.append(f"{probe}: internal error")
            return None

    def _report_progress(self, *, final: bool = False) -> None:
        if self._on_progress is None:
            return
        now = time.monotonic()
        if not final and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        self._on_progress(Progress(self._done, self._total, self._found))


def _merge_ssh(found: PortObservation | None, port: int, outcome: SshOutcome) -> PortObservation:
    """The SSH port's observation with the SSH probe's host key (and banner, if the banner probe had none)."""
    assert outcome.ssh is not None
    observation = found or PortObservation(port=port, service="ssh")
    ssh_info = replace(outcome.ssh, banner=(observation.ssh.banner if observation.ssh else "") or outcome.ssh.banner)
    return replace(observation, service="ssh", banner=observation.banner or ssh_info.banner, ssh=ssh_info)


def _alive_by(icmp_replied: bool, tcp_answered: bool, snmp_answered: bool) -> str:
    """The first probe that proved the host is there, in order of cheapness: icmp, tcp, snmp."""
    if icmp_replied:
        return "icmp"
    if tcp_answered:
        return "tcp"
    return "snmp" if snmp_answered else ""


def _single(exc: Exception) -> Exception:
    """The one exception inside (nested) exception groups, else the group itself."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
