"""Every metric the service and the writer export, defined once.

Names, types, labels and buckets follow docs/metrics.md. Label values are created at
import so a series exists (at 0) before its first event: `rate()` then reads 0, not "no data",
and alerts on ratios have both sides.

Under gunicorn the app runs in several worker processes, so prometheus_client's multiprocess
mode is used when PROMETHEUS_MULTIPROC_DIR is set (the gunicorn config sets it and wipes it at
start). Each gauge says how its per-process values combine: `livesum` adds the workers that are
alive, so a dead worker's in-flight count or pool size disappears with it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import REGISTRY

# docs/metrics.md's buckets (Go's DefBuckets): 5 ms to 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Database calls are faster than requests; finer low buckets show a pool wait early.
DB_BUCKETS = (0.0005, 0.001, 0.0025, *LATENCY_BUCKETS)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

STATUS_CODES = ("201", "202", "400", "405", "409", "413", "500", "503")
ERROR_TYPES = (
    "validation",
    "duplicate_email",
    "database",
    "invalid_json",
    "invalid_method",
    "body_too_large",
    "queue",
    "overloaded",
    "queue_full",
    "shard_unavailable",
    "not_replicated",
)
POOL_STATES = ("in_use", "idle", "open")
# Why a signup was shed, each named after the setting that drew the line: the wait it could
# expect was over SIGNUP_POOL_WAIT_TARGET_MS while the queue stood, or SIGNUP_POOL_MAX_WAITING
# requests already waited (the memory guard).
SHED_REASONS = ("wait_target", "max_waiting")

# --- golden signals -------------------------------------------------------------------------
REQUEST_DURATION = Histogram(
    "signup_request_duration_seconds",
    "Duration of signup requests in seconds",
    ["status_code"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter("signup_requests_total", "Total number of signup requests", ["status_code"])
ERRORS = Counter("signup_errors_total", "Total number of signup errors by type", ["error_type"])
DB_CONNECTIONS = Gauge(
    "database_connections",
    "Database connections of the app's pools by state, summed over live workers",
    ["state"],
    multiprocess_mode="livesum",
)
DB_CONNECTIONS_MAX = Gauge(
    "database_connections_max",
    "Configured maximum size of the app's pools, summed over live workers",
    multiprocess_mode="livesum",
)
# --- recommended ----------------------------------------------------------------------------
DB_QUERY_DURATION = Histogram(
    "database_query_duration_seconds",
    "Duration of database operations in seconds",
    ["operation"],
    buckets=DB_BUCKETS,
)
VALIDATION_ERRORS = Counter(
    "signup_validation_errors_total", "Validation failures by field", ["field"]
)
DUPLICATE_ATTEMPTS = Counter(
    "signup_duplicate_email_attempts_total", "Signups refused because the email exists"
)
IN_FLIGHT = Gauge(
    "signup_requests_in_flight",
    "Signup requests being handled now",
    multiprocess_mode="livesum",
)
# --- saturation the phases add --------------------------------------------------------------
POOL_WAITING = Gauge(
    "database_pool_requests_waiting",
    "Requests queued for a pool connection, summed over live workers",
    multiprocess_mode="livesum",
)
POOL_WAIT = Histogram(
    "database_pool_wait_seconds",
    "Time a request waited to get a pool connection",
    buckets=DB_BUCKETS,
)
POOL_OLDEST_WAIT = Gauge(
    "database_pool_oldest_wait_seconds",
    "Longest any request had waited for a pool connection over the last sample, worst worker",
    multiprocess_mode="livemax",
)
POOL_WAIT_TARGET = Gauge(
    "database_pool_wait_target_seconds",
    "Configured wait target above which a standing pool queue sheds signups (0: off)",
    multiprocess_mode="livemax",
)
SHED = Counter(
    "signup_shed_total",
    "Signups refused on purpose with 503 and Retry-After before queueing, by reason",
    ["reason"],
)
QUEUE_BACKLOG_SEEN = Gauge(
    "signup_queue_backlog_seen",
    "Stream backlog as last seen by the API when deciding to shed load",
    multiprocess_mode="max",
)

# --- phase 3: the stream and the writer (exported by each writer process) ------------------
WRITER_STAGES = ("read", "insert", "ack", "claim")


@dataclass(frozen=True)
class WriterMetrics:
    """The writer's series. Built on first use, in the writer process only: under gunicorn
    every metric created at import writes a file the app's scrape would then export (at 0,
    one series per worker), so the app must never construct these."""

    registry: CollectorRegistry
    queue_depth: Gauge
    queue_oldest_age: Gauge
    batch_size: Histogram
    flush_duration: Histogram
    rows: Counter
    duplicates: Counter
    redeliveries: Counter
    errors: Counter
    last_flush: Gauge
    accept_to_row: Histogram
    query_duration: Histogram


@functools.cache
def writer() -> WriterMetrics:
    reg = CollectorRegistry()
    built = WriterMetrics(
        registry=reg,
        queue_depth=Gauge(
            "signup_queue_depth",
            "Signups in the stream not yet written to PostgreSQL",
            registry=reg,
        ),
        queue_oldest_age=Gauge(
            "signup_queue_oldest_age_seconds",
            "Age of the oldest signup still in the stream (lag)",
            registry=reg,
        ),
        batch_size=Histogram(
            "signup_writer_batch_size",
            "Signups per batch written by the writer",
            buckets=BATCH_BUCKETS,
            registry=reg,
        ),
        flush_duration=Histogram(
            "signup_writer_flush_duration_seconds",
            "Time to write one batch to PostgreSQL and acknowledge it",
            buckets=DB_BUCKETS,
            registry=reg,
        ),
        rows=Counter("signup_writer_rows_inserted_total", "Rows the writer inserted", registry=reg),
        duplicates=Counter(
            "signup_writer_duplicates_dropped_total",
            "Stream entries whose email already had a row (a redelivery or lost claims)",
            registry=reg,
        ),
        redeliveries=Counter(
            "signup_writer_redeliveries_total",
            "Entries taken over from a writer that stopped",
            registry=reg,
        ),
        errors=Counter(
            "signup_writer_errors_total", "Writer failures by stage", ["stage"], registry=reg
        ),
        last_flush=Gauge(
            "signup_writer_last_flush_timestamp_seconds",
            "Unix time of the writer's last completed loop",
            registry=reg,
        ),
        accept_to_row=Histogram(
            "signup_accept_to_row_seconds",
            "Time from a 202 (entry appended) to its row committed",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=reg,
        ),
        query_duration=Histogram(
            "database_query_duration_seconds",
            "Duration of database operations in seconds",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=reg,
        ),
    )
    for stage in WRITER_STAGES:
        built.errors.labels(stage)
    built.query_duration.labels("insert_batch")
    return built


# The labelled series of a status code, looked up once rather than on every request.
@functools.cache
def requests_answered(status: int) -> Counter:
    return REQUESTS.labels(str(status))


@functools.cache
def request_duration(status: int) -> Histogram:
    return REQUEST_DURATION.labels(str(status))


def precreate_request_series() -> None:
    for code in STATUS_CODES:
        REQUEST_DURATION.labels(code)
        REQUESTS.labels(code)
    for kind in ERROR_TYPES:
        ERRORS.labels(kind)
    for field in ("email", "first_name", "last_name"):
        VALIDATION_ERRORS.labels(field)
    for state in POOL_STATES:
        DB_CONNECTIONS.labels(state)
    for reason in SHED_REASONS:
        SHED.labels(reason)
    DB_QUERY_DURATION.labels("insert_user")


def render() -> tuple[bytes, str]:
    """The exposition for GET /metrics: summed over all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
