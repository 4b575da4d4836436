"""Prometheus metrics of the gateway (names per Prometheus conventions)."""

from prometheus_client import Counter, Gauge, Histogram

SESSIONS = Gauge("outpost_gateway_sessions", "Live collector sessions", ["transport"])
SESSIONS_OPENED = Counter("outpost_gateway_sessions_opened_total", "Connections accepted", ["transport"])
SESSIONS_CLOSED = Counter("outpost_gateway_sessions_closed_total", "Sessions closed, by reason", ["reason"])
UNAUTHENTICATED = Gauge("outpost_gateway_unauthenticated_connections", "Connections still in the handshake")
HANDSHAKES_RATE_LIMITED = Counter(
    "outpost_gateway_handshakes_rate_limited_total",
    "Handshakes refused (RATE_LIMITED, with retry_after) for too many failures, by scope: address or key",
    ["scope"],
)
FAILED_HANDSHAKES = Counter(
    "outpost_gateway_failed_handshakes_total",
    "Failed handshakes counted against the limits, by kind: refused (valid proof), bad_proof, protocol_error",
    ["kind"],
)
FAILURES_FORGOTTEN = Counter(
    "outpost_gateway_failed_handshake_entries_forgotten_total",
    "Failure-window entries dropped because the ledger was full (least recently failed first)",
)
POLLS_REFUSED = Counter(
    "outpost_gateway_polls_refused_total",
    "Polls answered without a session, by reason: no_hello, too_many_sessions, unknown_session (expired or "
    "restarted), other_gateway (the token is another gateway's: the load balancer lacks session affinity)",
    ["reason"],
)
POLL_SESSIONS_EXPIRED = Counter(
    "outpost_gateway_poll_sessions_expired_total",
    "Polling sessions ended because the collector stopped polling, by phase: handshake or accepted",
    ["phase"],
)
HANDSHAKE_SECONDS = Histogram(
    "outpost_gateway_handshake_seconds",
    "Time from connection to the registry's decision",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRAMES_RECEIVED = Counter("outpost_gateway_frames_received_total", "Envelopes received from collectors", ["transport"])
WORK_REFUSED = Counter(
    "outpost_gateway_work_refused_total", "Job updates or results from collectors not allowed to work", ["kind"]
)

# Ingest (services/gateway/inventory/ingest_gate.py): every batch ends committed, rejected or throttled.
BATCHES_COMMITTED = Counter(
    "outpost_gateway_batches_committed_total", "Result batches committed and acked, new or duplicate", ["outcome"]
)
BATCHES_REJECTED = Counter(
    "outpost_gateway_batches_rejected_total",
    "Result batches acked without being stored (invalid, repeatedly crashing, foreign or unknown run)",
    ["reason"],
)
THROTTLES = Counter(
    "outpost_gateway_throttles_total", "Result batches not acked and answered with Throttle, by cause", ["reason"]
)
COMMIT_FAILURES = Counter(
    "outpost_gateway_commit_failures_total", "Inventory commits that failed (unavailable, timeout, ...)", ["kind"]
)
COMMITS_IN_FLIGHT = Gauge("outpost_gateway_commits_in_flight", "Inventory commits running now")
COMMIT_SECONDS = Histogram(
    "outpost_gateway_commit_seconds",
    "Time one inventory commit took, failed ones included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OBSERVATIONS_STALE = Counter(
    "outpost_gateway_observations_stale_total",
    "Device observations skipped because another job run had recorded a newer sighting (server time)",
)
INGEST_COOL_DOWN_SECONDS = Gauge(
    "outpost_gateway_ingest_cool_down_seconds", "Current ingest cool-down after database failures; 0 when healthy"
)

# Leases (services/gateway/sessions/lease_renewal.py).
LEASE_RENEWALS = Counter("outpost_gateway_lease_renewals_total", "RenewLeases calls, by result", ["result"])
LEASES_LOST = Counter("outpost_gateway_leases_lost_total", "Runs the scheduler did not renew (JobCancel sent)")
CHECK_INTERVAL_SECONDS = Gauge(
    "outpost_gateway_collector_check_seconds",
    "The check interval this gateway tells polling collectors (collector_check_minutes, in seconds)",
)
POLL_INTERVAL_SECONDS = Histogram(
    "outpost_gateway_poll_interval_seconds",
    "Time between two polls of one accepted polling session (its collector's check-in cadence)",
    buckets=(1, 5, 15, 30, 60, 90, 120, 180, 300, 450, 600, 900, 1800, 3600, 7200),
)
SEALED_FAILURES = Counter(
    "outpost_gateway_sealed_failures_total",
    "Sealed sessions closed because a record failed (altered, replayed, reordered, truncated...), by cause",
    ["cause"],
)
HANDSHAKE_REFUSALS = Counter(
    "outpost_gateway_handshake_refusals_total",
    "Sealed handshakes refused before key confirmation, by reason (unknown_access_key, first_contact_refused, "
    "handshake_failed, malformed_handshake, unsealed, zone_mismatch)",
    ["reason"],
)
ACCESS_KEYS = Gauge(
    "outpost_gateway_access_keys",
    "Access keys this gateway would grant now (from the registry's WatchAccessKeys; expired ones excluded)",
)
PROXY_HEADERS_REFUSED = Counter(
    "outpost_gateway_proxy_headers_refused_total",
    "TCP connections closed before a session on a --tcp-proxy-protocol listener, by reason: untrusted (a PROXY "
    "header from an address not in --trusted-proxies), malformed, timeout, closed, too_many_connections",
    ["reason"],
)

# --- the watched cache of registered collectors and local verification (ADR 0034) -------
COLLECTOR_CACHE_ENTRIES = Gauge(
    "outpost_gateway_collector_cache_entries", "Registered collectors this gateway can verify itself"
)
COLLECTOR_CACHE_FRESH = Gauge(
    "outpost_gateway_collector_cache_fresh",
    "1 while the collector watch is open, resynced and heard from within the staleness bound; 0: "
    "handshakes go to the registry",
)
HANDSHAKES_VERIFIED_LOCALLY = Counter(
    "outpost_gateway_handshakes_verified_locally_total",
    "Known collectors' handshakes accepted from the watched cache, without a registry call",
)
HANDSHAKES_DEFERRED = Counter(
    "outpost_gateway_handshakes_deferred_total",
    "Handshakes the cache could not decide and sent to the registry, by reason: unknown, stale, "
    "changed (the hello differs from the record in what the registry records), refused (only the "
    "registry refuses, with its message and its evidence)",
    ["reason"],
)
REGISTRY_CALLS_REFUSED = Counter(
    "outpost_gateway_registry_calls_refused_total",
    "Handshakes refused with retry_after because this gateway's registry calls were at their bound, by "
    "lane: known (the cache knows the collector) or first_contact",
    ["lane"],
)
REGISTRY_CALLS_IN_FLIGHT = Gauge(
    "outpost_gateway_registry_calls_in_flight", "Handshake calls to the registry running now, by lane", ["lane"]
)
