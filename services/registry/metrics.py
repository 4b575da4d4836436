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


async def refresh_collector_gauge(store: RegistryStore, interval: float) -> None:
    """Keep `outpost_registry_collectors` current, whichever replica made the change."""
    while True:
        try:
            counts = await store.count_by_state()
        except Exception as exc:
            log.warning("metrics_refresh_failed", error=str(exc))
        else:
            for state, count in counts.items():
                COLLECTORS.labels(state.value).set(count)
        await asyncio.sleep(interval)
