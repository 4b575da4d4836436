"""The registry's Prometheus metrics (served by `outpost.runtime.start_metrics`)."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Counter, Gauge

from services.registry.store.queries import RegistryStore

log = structlog.get_logger(__name__)

COLLECTORS = Gauge(
    "outpost_registry_collectors",
    "Collectors by admin state, refreshed when the change log moves and every few seconds.",
    ["state"],
)
AUTHENTICATIONS = Counter(
    "outpost_registry_authentications_total",
    "Handshakes decided, by decision: accepted or the refusal reason.",
    ["decision"],
)
REGISTRATIONS = Counter(
    "outpost_registry_registrations_total",
    "Admin registration attempts, by result: registered or refused.",
    ["result"],
)
KEY_ROTATIONS = Counter(
    "outpost_registry_collector_key_rotations_total",
    "Collector identity key rotations decided (RotateCollectorKey), by result: accepted or refused.",
    ["result"],
)
PASSWORD_ROTATIONS = Counter(
    "outpost_registry_collector_password_rotations_total",
    "Collector service passwords replaced with set-password (SetCollectorPassword, ADR 0025).",
)
ENROLLMENTS = Counter(
    "outpost_registry_enrollments_total",
    "Hellos with a zone enrollment token, by result: enrolled, or why the token did not admit it "
    "(unknown, revoked, expired, used_up, network, zone)",
    ["result"],
)
ACCESS_KEY_WATCHERS = Gauge(
    "outpost_registry_access_key_watchers",
    "Open WatchAccessKeys streams (one per gateway).",
)
CREDENTIALS_SEALED = Counter(
    "outpost_registry_credentials_sealed_total",
    "Credentials sealed to collectors: one per credential in each SealCredentials answer.",
)
PENDING_REFUSED = Counter(
    "outpost_registry_pending_refused_total",
    "First contacts refused because too many collectors wait as pending, by bound: total or network",
    ["scope"],
)
REFUSALS_UNRECORDED = Counter(
    "outpost_registry_refusals_unrecorded_total",
    "Refusals of unknown collectors not written as evidence (beyond the per-minute budget), by reason",
    ["reason"],
)
WATCHERS = Gauge("outpost_registry_watchers", "Open WatchCollectors streams on this replica.")
# Collectors' spools, from their last reports (Hello and heartbeats, through the gateways'
# session reports), summed per zone: bounded by the number of zones, not of collectors.
SPOOL_DROPPED = Gauge(
    "outpost_registry_collector_spool_dropped_batches",
    "Result batches the zone's collectors dropped from their spools, lifetime totals as last reported, by cause: "
    "full, expired, corrupt. It grows when results are lost: alert on delta() > 0 (it falls when a collector "
    "is removed).",
    ["zone", "cause"],
)
SPOOL_DROPPED_DEVICES = Gauge(
    "outpost_registry_collector_spool_dropped_devices",
    "Device observations in the batches the zone's collectors dropped (lifetime totals as last reported)",
    ["zone"],
)
SPOOL_BATCHES = Gauge(
    "outpost_registry_collector_spool_batches",
    "Result batches waiting in the zone's collectors' spools (written, not yet acknowledged) as last reported",
    ["zone"],
)
SPOOL_BYTES = Gauge(
    "outpost_registry_collector_spool_bytes",
    "Bytes of the batches waiting in the zone's collectors' spools as last reported",
    ["zone"],
)


async def refresh_collector_gauge(store: RegistryStore, interval: float) -> None:
    """Keep `outpost_registry_collectors` and the spool gauges current, whichever replica made the change."""
    while True:
        try:
            counts = await store.count_by_state()
        except Exception as exc:
            log.warning("metrics_refresh_failed", error=str(exc))
        else:
            for state, count in counts.items():
                COLLECTORS.labels(state.value).set(count)
        try:
            spools = await store.spool_totals_by_zone()
        except Exception as exc:
            log.warning("metrics_refresh_failed", error=str(exc))
        else:
            set_spool_gauges(spools)
        await asyncio.sleep(interval)


_spool_zones: set[str] = set()


def set_spool_gauges(spools: dict[str, dict[str, int]]) -> None:
    """The spool gauges from `RegistryStore.spool_totals_by_zone`; a zone no longer listed is dropped."""
    for zone in _spool_zones - set(spools):
        for cause in ("full", "expired", "corrupt"):
            SPOOL_DROPPED.remove(zone, cause)
        for gauge in (SPOOL_DROPPED_DEVICES, SPOOL_BATCHES, SPOOL_BYTES):
            gauge.remove(zone)
    _spool_zones.clear()
    _spool_zones.update(spools)
    for zone, totals in spools.items():
        for cause in ("full", "expired", "corrupt"):
            SPOOL_DROPPED.labels(zone, cause).set(totals[f"dropped_{cause}"])
        SPOOL_DROPPED_DEVICES.labels(zone).set(totals["dropped_devices"])
        SPOOL_BATCHES.labels(zone).set(totals["batches"])
        SPOOL_BYTES.labels(zone).set(totals["bytes"])
