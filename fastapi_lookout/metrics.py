"""The metrics catalog: every metric the service exports, defined once.

Dashboards, recording rules and alerts import this module (never copy names
from it), so renaming a metric here breaks the build instead of a panel.

Rules kept here:
- names carry unit and kind (``_seconds``, ``_bytes``, ``_total``);
- every label value comes from a bounded set: the route template, a fixed
  enum below, or an exception class name;
- label sets that are known up front are initialised to zero, so a panel or
  an ``increase()`` has a series before the first event happens.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before this module is
imported, e.g. ``uvicorn --workers 2``) is supported: gauges say how worker
values combine. Exemplars are only kept in single-process mode, a limit of
prometheus-client's multiprocess storage.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from fastapi_lookout.audit_queue_metrics import AuditQueueMetrics
from fastapi_lookout.http_metrics import HttpMetrics

# ``*_created`` series double the series count and no dashboard reads them.
disable_created_metrics()

MULTIPROCESS: Final = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# --- bounded label values -------------------------------------------------
UNMATCHED_ENDPOINT: Final = "unmatched"
"""`endpoint` of every request no route matched (404s on random paths)."""
OTHER_METHOD: Final = "OTHER"
"""`method` of any request method outside ``HTTP_METHODS``."""
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})

WS_CONNECTION_STATUSES: Final = ("accepted", "rejected_auth", "rejected_limit")
RATE_LIMIT_TYPES: Final = ("ip", "user", "ws_connection", "ws_message")
AUTH_STATUSES: Final = (
    "success",
    "missing",
    "malformed",
    "expired",
    "invalid_signature",
    "invalid_claims",
    "unknown_key",
    "jwks_unavailable",
    "forbidden",
)
DB_OPERATIONS: Final = ("select", "insert", "update", "delete", "other", "audit_insert")
"""`operation` of db_query_duration_seconds: a statement's first keyword (db_timing.py), or audit batches."""

# Latency buckets include the SLO thresholds the rules and dashboards use (0.25 s, 1 s).
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FAST_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# --- HTTP -------------------------------------------------------------------
# The middleware counts requests in ``HTTP`` (lock-free per-route series, see http_metrics.py), which
# reports these three families; the objects are not registered themselves, and whatever is counted on
# them directly is added to HTTP's series (in multiprocess mode the middleware writes through to them).
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template and status code.",
    ("method", "endpoint", "status_code"),
    registry=None,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the last response byte, by route template.",
    ("method", "endpoint"),
    buckets=LATENCY_BUCKETS,
    registry=None,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served right now.",
    ("method", "endpoint"),
    multiprocess_mode="livesum",
    registry=None,
)
HTTP: Final = HttpMetrics(
    HTTP_REQUESTS, HTTP_REQUEST_DURATION, HTTP_REQUESTS_IN_PROGRESS, buckets=LATENCY_BUCKETS, registry=REGISTRY,
    shared=MULTIPROCESS,
)
"""What the middleware updates per request; it reports the three families above."""

# --- WebSocket ------------------------------------------------------------
WS_CONNECTIONS_ACTIVE = Gauge(
    "ws_connections_active", "Open WebSocket connections.", multiprocess_mode="livesum"
)
WS_CONNECTIONS = Counter(
    "ws_connections_total", "WebSocket connection attempts by outcome.", ("status",)
)
WS_MESSAGES_RECEIVED = Counter("ws_messages_received_total", "WebSocket messages received from clients.")
WS_MESSAGES_SENT = Counter("ws_messages_sent_total", "WebSocket messages sent to clients.")
WS_MESSAGE_PROCESSING_DURATION = Histogram(
    "ws_message_processing_duration_seconds",
    "Time to handle one WebSocket message, by package id ('unknown' for ids the service does not serve).",
    ("pkg_id",),
    buckets=FAST_BUCKETS,
)

# --- service ----------------------------------------------------------------
APP_INFO = Gauge(
    "app_info",
    "Always 1; labels say which build is running.",
    ("version", "python_version", "environment"),
    multiprocess_mode="max",
)
RATE_LIMIT_HITS = Counter("rate_limit_hits_total", "Requests refused by a rate limit.", ("limit_type",))
AUTH_ATTEMPTS = Counter(
    "auth_attempts_total", "Bearer-token checks by outcome (success or the reason of failure).", ("status",)
)
APP_ERRORS = Counter(
    "app_errors_total",
    "Unhandled exceptions, by exception class and route template.",
    ("error_type", "handler"),
)
DB_QUERY_DURATION = Histogram(
    "db_query_duration_seconds",
    "Database statement time, by kind of operation.",
    ("operation",),
    buckets=FAST_BUCKETS,
)

# --- audit writer -----------------------------------------------------------
# ``AUDIT_QUEUE`` counts rows without a lock (audit_queue_metrics.py) and reports these two families,
# as ``HTTP`` does for the request families: the objects are not registered, what is counted on them
# directly is added in.
AUDIT_QUEUE_SIZE = Gauge(
    "audit_queue_size", "Audit rows waiting in memory to be written.", multiprocess_mode="livesum", registry=None
)
AUDIT_EVENTS_ENQUEUED = Counter("audit_events_enqueued_total", "Audit rows accepted into the queue.", registry=None)
AUDIT_QUEUE: Final = AuditQueueMetrics(AUDIT_EVENTS_ENQUEUED, AUDIT_QUEUE_SIZE, registry=REGISTRY, shared=MULTIPROCESS)
"""What ``AuditWriter.enqueue`` updates per row; it reports the two families above."""
AUDIT_EVENTS_WRITTEN = Counter("audit_events_written_total", "Audit rows committed to the database.")
AUDIT_EVENTS_DROPPED = Counter(
    "audit_events_dropped_total",
    "Audit rows lost (exact count): queue full, refused by the database for their content, or no spool at shutdown.",
)
AUDIT_EVENTS_SPOOLED = Counter(
    "audit_events_spooled_total", "Audit rows saved to the spool file because the database was down at shutdown."
)
AUDIT_WRITE_FAILURES = Counter(
    "audit_write_failures_total", "Failed attempts to write a batch (the rows are kept and retried)."
)
AUDIT_BATCH_DURATION = Histogram(
    "audit_batch_duration_seconds", "Time to write one batch of audit rows.", buckets=FAST_BUCKETS
)
AUDIT_LAST_WRITE = Gauge(
    "audit_last_write_timestamp_seconds",
    "Unix time of the last successful audit batch.",
    multiprocess_mode="max",
)
AUDIT_SPOOL_FOREIGN_ROWS = Gauge(
    "audit_spool_foreign_rows",
    "Spooled audit rows bound to another database, set aside beside the spool as found at start: never replayed "
    "here; a reviewer replays them (fastapi-lookout-audit replay).",
    multiprocess_mode="livemax",
)

# --- audit hash chain (fastapi_lookout/audit/chain.py) -----------------------------------
# Chain gauges combine workers with livemax: every worker sees the same database.
CHAIN_VERIFICATION_RESULTS: Final = ("ok", "broken", "error")
AUDIT_CHAIN_HEAD_SEQ = Gauge(
    "audit_chain_head_seq",
    "Highest seq of the audit hash chain this process saw written (its own batches or the head read by the verifier).",
    multiprocess_mode="livemax",
)
AUDIT_CHAIN_VERIFIED_SEQ = Gauge(
    "audit_chain_verified_seq",
    "Highest seq up to which the periodic verifier found the audit hash chain intact.",
    multiprocess_mode="livemax",
)
AUDIT_CHAIN_LAST_VERIFICATION = Gauge(
    "audit_chain_last_verification_timestamp_seconds",
    "Unix time the periodic audit chain verification last completed (intact or broken).",
    multiprocess_mode="livemax",
)
AUDIT_CHAIN_BROKEN = Gauge(
    "audit_chain_broken",
    "1 while the last verification found the audit trail edited, deleted, reordered or inserted into; else 0.",
    multiprocess_mode="livemax",
)
AUDIT_CHAIN_VERIFICATIONS = Counter(
    "audit_chain_verifications_total",
    "Periodic audit chain verifications by result: ok, broken (tampering found), error (could not read).",
    ("result",),
)
AUDIT_ROWS_PRUNED = Counter(
    "audit_rows_pruned_total",
    "Audit rows deleted by retention (AUDIT_RETENTION_DAYS), each range covered by a signed checkpoint.",
)


def _initialise_known_series() -> None:
    for status in WS_CONNECTION_STATUSES:
        WS_CONNECTIONS.labels(status)
    for limit_type in RATE_LIMIT_TYPES:
        RATE_LIMIT_HITS.labels(limit_type)
    for status in AUTH_STATUSES:
        AUTH_ATTEMPTS.labels(status)
    for operation in DB_OPERATIONS:
        DB_QUERY_DURATION.labels(operation)
    for result in CHAIN_VERIFICATION_RESULTS:
        AUDIT_CHAIN_VERIFICATIONS.labels(result)


_initialise_known_series()


def set_app_info(version: str, environment: str) -> None:
    APP_INFO.labels(version, platform.python_version(), environment).set(1)


# --- machine-readable view for the dashboard and rule checks ---------------
@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str

    def series(self) -> dict[str, tuple[str, ...]]:
        """Every series name this family exposes, with the labels each carries."""
        if self.kind == "counter":
            return {f"{self.name}_total": self.labels}
        if self.kind == "histogram":
            return {
                f"{self.name}_bucket": (*self.labels, "le"),
                f"{self.name}_sum": self.labels,
                f"{self.name}_count": self.labels,
            }
        return {self.name: self.labels}


def _spec(metric: MetricWrapperBase) -> MetricSpec:
    return MetricSpec(metric._name, metric._type, tuple(metric._labelnames), metric._documentation)


CATALOG: Final[tuple[MetricSpec, ...]] = tuple(
    _spec(m) for m in globals().copy().values() if isinstance(m, MetricWrapperBase)
)


def exposed_series() -> dict[str, tuple[str, ...]]:
    """Series name -> label names, for everything in the catalog."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in CATALOG:
        out.update(spec.series())
    return out
