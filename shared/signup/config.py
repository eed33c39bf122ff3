"""Settings: read from the environment once, validated, immutable.

Every knob of the service and the writer lives here so a bad value stops the process at
start with a message naming the variable, instead of surfacing as a 500 under load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

Store = Literal["postgres", "queue", "cluster", "none"]
STORES: tuple[Store, ...] = ("postgres", "queue", "cluster", "none")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    store: Store = "postgres"
    database_url: str = ""
    pool_min: int = 2
    pool_max: int = 10
    pool_timeout: float = 5.0
    # psycopg_pool retries a lost connection with doubling delays and no cap; giving up after
    # this long lets the next request start a fresh attempt, so recovery after a database
    # restart takes seconds instead of the minute the doubling would reach.
    pool_reconnect_timeout: float = 5.0
    # Shedding by time (signup._shedding): once the oldest request waiting for a connection
    # has waited the target for a whole interval while the queue kept growing, a signup that
    # can expect to wait the target or more is refused with a 503. The target comes from the
    # SLO (p95 under 100 ms): served requests wait about half of it, leaving the rest to the
    # query and the app. The interval is a second: with 200 ms, stalls of the database (a
    # slow commit, a checkpoint) armed the policy at rates that never refusing served within
    # the SLO (docs/results/2026-12-06-vm-shed.md). A stall shorter than target plus interval
    # costs latency, not errors; one longer breaks the SLO's latency whatever is done.
    # None (SIGNUP_POOL_WAIT_TARGET_MS=off) never refuses by time.
    pool_wait_target_ms: int | None = 50
    pool_wait_interval_ms: int = 1000
    # A memory guard, far above any queue the wait target lets form: a worker with this many
    # requests waiting for a connection refuses the next at once. 0: no limit.
    pool_max_waiting: int = 2000
    # psycopg prepares a statement after it ran this many times on a connection. PgBouncer in
    # transaction mode (Debian ships 1.18) cannot keep prepared statements, so phase 2 and 3
    # switch this off with SIGNUP_PREPARE_THRESHOLD=none.
    prepare_threshold: int | None = 5
    max_body_bytes: int = 64 * 1024
    redis_url: str = ""
    stream: str = "signups"
    # Phase 3 sheds load with 503 once this many signups wait in the stream (phase 4: in all
    # its shards' streams together, each shard taking an equal part).
    max_backlog: int = 200_000
    # Phase 4: the Redis Cluster's nodes to start from (any that answers tells the client the
    # rest), the shards the claims and stream are split into, and how many replicas must have
    # a signup before its 202 (Redis's WAIT; 0 answers once the primary has it).
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    shards: int = 12
    wait_replicas: int = 1
    wait_timeout_ms: int = 100
    retry_after_seconds: int = 1
    writer_batch_size: int = 1000
    writer_max_wait_ms: int = 50
    # Entries a writer read but did not acknowledge for this long are taken over by another.
    # It must exceed the slowest batch, or two writers would insert the same batch twice (the
    # unique index makes that harmless, but it is wasted work).
    writer_claim_idle_ms: int = 30_000
    writer_metrics_port: int = 9101
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        r = _Reader(env)
        d = cls()  # the defaults (slots hide class-level field values)
        settings = cls(
            store=r.choice("SIGNUP_STORE", STORES, d.store),
            database_url=r.text("SIGNUP_DATABASE_URL", ""),
            pool_min=r.integer("SIGNUP_POOL_MIN", d.pool_min, minimum=0),
            pool_max=r.integer("SIGNUP_POOL_MAX", d.pool_max, minimum=1),
            pool_timeout=r.number("SIGNUP_POOL_TIMEOUT", d.pool_timeout, minimum=0.01),
            pool_reconnect_timeout=r.number(
                "SIGNUP_POOL_RECONNECT_TIMEOUT", d.pool_reconnect_timeout, minimum=0.1
            ),
            pool_wait_target_ms=r.optional_integer(
                "SIGNUP_POOL_WAIT_TARGET_MS", d.pool_wait_target_ms, minimum=1
            ),
            pool_wait_interval_ms=r.integer(
                "SIGNUP_POOL_WAIT_INTERVAL_MS", d.pool_wait_interval_ms, minimum=10
            ),
            pool_max_waiting=r.integer("SIGNUP_POOL_MAX_WAITING", d.pool_max_waiting, 0),
            prepare_threshold=r.optional_integer(
                "SIGNUP_PREPARE_THRESHOLD", d.prepare_threshold, minimum=0
            ),
            max_body_bytes=r.integer("SIGNUP_MAX_BODY_BYTES", d.max_body_bytes, minimum=256),
            redis_url=r.text("SIGNUP_REDIS_URL", ""),
            stream=r.text("SIGNUP_STREAM", d.stream),
            max_backlog=r.integer("SIGNUP_MAX_BACKLOG", d.max_backlog, minimum=1),
            redis_cluster_nodes=r.addresses("SIGNUP_REDIS_CLUSTER_NODES"),
            shards=r.integer("SIGNUP_SHARDS", d.shards, minimum=1, maximum=1024),
            wait_replicas=r.integer("SIGNUP_WAIT_REPLICAS", d.wait_replicas, minimum=0),
            wait_timeout_ms=r.integer("SIGNUP_WAIT_TIMEOUT_MS", d.wait_timeout_ms, minimum=1),
            retry_after_seconds=r.integer("SIGNUP_RETRY_AFTER", d.retry_after_seconds, minimum=1),
            writer_batch_size=r.integer(
                "SIGNUP_WRITER_BATCH_SIZE", d.writer_batch_size, minimum=1, maximum=50_000
            ),
            writer_max_wait_ms=r.integer("SIGNUP_WRITER_MAX_WAIT_MS", d.writer_max_wait_ms, 1),
            writer_claim_idle_ms=r.integer(
                "SIGNUP_WRITER_CLAIM_IDLE_MS", d.writer_claim_idle_ms, minimum=100
            ),
            writer_metrics_port=r.integer(
                "SIGNUP_WRITER_METRICS_PORT", d.writer_metrics_port, minimum=0, maximum=65535
            ),
            log_level=r.choice("SIGNUP_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        )
        if settings.pool_min > settings.pool_max:
            raise SettingsError(
                f"SIGNUP_POOL_MIN={settings.pool_min} is larger than "
                f"SIGNUP_POOL_MAX={settings.pool_max}"
            )
        target = settings.pool_wait_target_ms
        if target is not None and target >= settings.pool_timeout * 1000:
            # Every waiter would time out (a 500) before one could be refused (a 503).
            raise SettingsError(
                f"SIGNUP_POOL_WAIT_TARGET_MS={target} must be below "
                f"SIGNUP_POOL_TIMEOUT={settings.pool_timeout:g} s"
            )
        if settings.store == "postgres" and not settings.database_url:
            raise SettingsError("SIGNUP_DATABASE_URL is required when SIGNUP_STORE=postgres")
        if settings.store == "queue" and not settings.redis_url:
            raise SettingsError("SIGNUP_REDIS_URL is required when SIGNUP_STORE=queue")
        if settings.store == "cluster" and not settings.redis_cluster_nodes:
            raise SettingsError(
                "SIGNUP_REDIS_CLUSTER_NODES (host:port,host:port) is required when "
                "SIGNUP_STORE=cluster"
            )
        for name, url, schemes in (
            ("SIGNUP_DATABASE_URL", settings.database_url, ("postgresql://", "postgres://")),
            ("SIGNUP_REDIS_URL", settings.redis_url, ("redis://", "rediss://", "unix://")),
        ):
            if url and not url.startswith(schemes):
                raise SettingsError(f"{name} must start with one of {', '.join(schemes)}")
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _get(self, name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not {expected}") from None

    def text(self, name: str, default: str) -> str:
        return self._get(name, default, str, "text")

    def choice(self, name: str, options: tuple[str, ...], default: _T) -> _T:
        value = self._get(name, cast(str, default), str, "text")
        if value not in options:
            raise SettingsError(f"{name}={value!r} must be one of {', '.join(options)}")
        return cast(_T, value)

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        value = self._get(name, default, int, "an integer")
        return self._bounded(name, value, minimum, maximum)

    def addresses(self, name: str) -> tuple[tuple[str, int], ...]:
        """host:port,host:port; an empty value is none."""
        found = []
        for item in self._env.get(name, "").split(","):
            if not item.strip():
                continue
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingsError(f"{name}: {item.strip()!r} is not host:port")
            found.append((host, int(port)))
        return tuple(found)

    def number(self, name: str, default: float, minimum: float) -> float:
        value = self._get(name, default, float, "a number")
        return self._bounded(name, value, minimum, None)

    def optional_integer(self, name: str, default: int | None, minimum: int) -> int | None:
        raw = self._env.get(name, "").strip().lower()
        if raw in ("none", "off", "disabled"):
            return None
        value = self._get(name, default, int, "an integer, or off")
        return None if value is None else self._bounded(name, value, minimum, None)

    @staticmethod
    def _bounded(name: str, value: _T, minimum: float, maximum: float | None) -> _T:
        number = cast(float, value)
        if number != number or number < minimum:  # NaN fails the first test
            raise SettingsError(f"{name}={value} must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise SettingsError(f"{name}={value} must be at most {maximum}")
        return value
