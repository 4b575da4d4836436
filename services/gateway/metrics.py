"""Prometheus metrics of the gateway (names per Prometheus conventions)."""

from prometheus_client import Counter, Gauge, Histogram

SESSIONS = Gauge("outpost_gateway_sessions", "Live collector sessions", ["transport"])
SESSIONS_OPENED = Counter("outpost_gateway_sessions_opened_total", "Connections accepted", ["transport"])
SESSIONS_CLOSED = Counter("outpost_gateway_sessions_closed_total", "Sessions closed, by reason", ["reason"])
UNAUTHENTICATED = Gauge("outpost_gateway_unauthenticated_connections", "Connections still in the handshake")
HANDSHAKE_SECONDS = Histogram(
    "outpost_gateway_handshake_seconds",
    "Time from connection to the registry's decision",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRAMES_RECEIVED = Counter("outpost_gateway_frames_received_total", "Envelopes received from collectors", ["transport"])
WORK_REFUSED = Counter(
    "outpost_gateway_work_refused_total", "Job updates or results from collectors not allowed to work", ["kind"]
)
BATCHES_COMMITTED = Counter("outpost_gateway_batches_committed_total", "Result batches committed", ["outcome"])
