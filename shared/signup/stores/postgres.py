"""Phases 1 and 2: one INSERT ... RETURNING per signup, through a psycopg connection pool."""

from __future__ import annotations

import contextlib
import math
import select
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests

from signup import metrics
from signup._shedding import WaitPolicy
from signup.config import Settings
from signup.stores.base import DuplicateEmail, Outcome, Overloaded, Status, StoreUnavailable
from signup.validation import SignupRequest


def closed_by_server(conn: psycopg.AsyncConnection) -> bool:
    """Whether the server side of this idle connection is gone, found without sending anything.

    An idle connection has nothing to read, so a readable socket means the server closed it
    (PgBouncer or PostgreSQL restarted: the kernel delivered its FIN) or sent a goodbye
    before closing. One poll, no round trip.
    """
    if conn.closed or conn.broken:
        return True
    poller = select.poll()  # not select(): a busy worker may hold descriptors above 1023
    poller.register(conn.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


INSERT = """
INSERT INTO users (email, first_name, last_name)
VALUES (%s, %s, %s)
RETURNING id, email, first_name, last_name, created_at, updated_at
"""
COLUMNS = ("id", "email", "first_name", "last_name", "created_at", "updated_at")  # RETURNING's


class PostgresStore:
    outcome: Outcome = "recorded"
    backend = "database"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        target = settings.pool_wait_target_ms
        # Every request that waits for a connection is tracked here, signups or not: they all
        # make the queue. Only signups are refused by it (see create).
        self._queue = WaitPolicy(
            None if target is None else target / 1000, settings.pool_wait_interval_ms / 1000
        )
        self._pool = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            timeout=settings.pool_timeout,
            # Only a memory guard: the wait policy refuses long before this count is reached.
            max_waiting=settings.pool_max_waiting,
            reconnect_timeout=settings.pool_reconnect_timeout,
            kwargs={"prepare_threshold": settings.prepare_threshold, "autocommit": True},
            open=False,
            name="signup",
        )

    async def open(self) -> None:
        # wait=False: the app starts and answers /healthz while the database is still down;
        # /readyz and the 500s say so, and the pool keeps reconnecting in the background.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _connection(
        self, wait: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pool connection whose server is still there.

        After a PgBouncer or PostgreSQL restart every idle connection in the pool is dead, and
        each would fail the request that next used it. A dead one is closed and handed back
        (the pool opens a replacement) before anything is sent on it, so trying the next one
        cannot do anything twice. What fails after the query was sent is not retried here: an
        INSERT whose answer was lost may have committed, and only the client can resend it.
        """
        deadline = time.monotonic() + (self._settings.pool_timeout if wait is None else wait)
        waiter, served = self._queue.join(), False
        try:
            while True:
                conn = await self._pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
                if not closed_by_server(conn):
                    break
                await conn.close()
                await self._pool.putconn(conn)
            served = True
        finally:
            self._queue.leave(waiter, served=served)
        try:
            async with conn:  # commit or roll back as the pool's own context manager does
                yield conn
        finally:
            await self._pool.putconn(conn)

    async def create(self, signup: SignupRequest) -> dict[str, object]:
        expected = self._queue.refuses()
        if expected is not None:
            metrics.SHED.labels("wait_target").inc()
            when = "none lately" if math.isinf(expected) else f"{expected * 1000:.0f} ms"
            raise Overloaded(
                self._settings.retry_after_seconds, f"the pool queue stands: expected wait {when}"
            )
        waited = time.perf_counter()
        try:
            async with self._connection() as conn:
                started = time.perf_counter()
                metrics.POOL_WAIT.observe(started - waited)
                try:
                    cur = await conn.execute(
                        INSERT, (signup.email, signup.first_name, signup.last_name)
                    )
                    row = await cur.fetchone()
                finally:
                    metrics.DB_QUERY_DURATION.labels("insert_user").observe(
                        time.perf_counter() - started
                    )
        except errors.UniqueViolation:
            raise DuplicateEmail from None
        except TooManyRequests as exc:
            metrics.SHED.labels("max_waiting").inc()
            raise Overloaded(
                self._settings.retry_after_seconds, "SIGNUP_POOL_MAX_WAITING requests wait"
            ) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable("no database connection within the pool timeout") from exc
        except psycopg.Error as exc:
            raise StoreUnavailable(str(exc).strip() or type(exc).__name__) from exc
        if row is None:  # pragma: no cover - RETURNING always yields the row
            raise StoreUnavailable("INSERT returned no row")
        # A tuple and one zip: dict_row would build the same dict through more layers.
        return dict(zip(COLUMNS, row, strict=True))

    async def check_ready(self) -> None:
        try:
            async with self._connection(wait=2.0) as conn:
                await conn.execute("SELECT 1 FROM users LIMIT 1")
        except (psycopg.Error, PoolTimeout, TooManyRequests) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def status(self, email: str) -> Status | None:
        try:
            async with self._connection() as conn:
                cur = await conn.execute("SELECT 1 FROM users WHERE email = %s", (email,))
                found = await cur.fetchone()
        except (psycopg.Error, PoolTimeout, TooManyRequests) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return "recorded" if found else None

    def sample_metrics(self) -> None:
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        metrics.DB_CONNECTIONS.labels("in_use").set(size - idle)
        metrics.DB_CONNECTIONS.labels("idle").set(idle)
        metrics.DB_CONNECTIONS.labels("open").set(size)
        metrics.DB_CONNECTIONS_MAX.set(self._settings.pool_max)
        # The policy's own count: the pool's also keeps waiters that gave up until a connection
        # comes back to find them gone.
        metrics.POOL_WAITING.set(self._queue.waiting)
        metrics.POOL_OLDEST_WAIT.set(self._queue.take_peak())
        metrics.POOL_WAIT_TARGET.set(self._queue.target or 0.0)
