"""The writer's loop: read or take over a batch, insert it, then acknowledge it.

`signup.writer` is the command around it (settings, metrics server, signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from typing import cast

import psycopg
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from signup import _insert, _stream, metrics
from signup._batch import ACKNOWLEDGE, Batch, Entry, acknowledgement, parse
from signup.config import Settings

log = logging.getLogger("signup.writer")
# Waiting for the first entry of a batch; the wait for the rest is SIGNUP_WRITER_MAX_WAIT_MS,
# in `Writer.fill_reads` reads at most.
IDLE_BLOCK_MS = 1000
# Measured (see README, `python -m signup._insert_bench`): COPY into a staging table wins from about
# 500 rows; below, its CREATE TEMP TABLE costs more than one INSERT ... unnest().
COPY_FROM = 500
MAX_BACKOFF = 5.0
# A consumer that owns nothing and has not read for this long is a writer that is gone.
FORGET_CONSUMER_MS = 60_000

# XGROUP CREATE ... MKSTREAM. allow-oom: a full Redis refuses it (even for a group that
# exists), and only writers, by deleting what they wrote, free the memory.
CREATE_GROUP = """#!lua flags=allow-oom
return redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
"""

FORGET = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


# What Redis failing looks like to the writer: the server's errors and the connection's
# (RedisError), and, in phase 4, the cluster client's own (no node serves a slot yet, the
# cluster cannot be reached), which redis-py raises as RedisClusterException. Either way the
# writer backs off and tries again; it never exits over Redis.
REDIS_FAILURES = (RedisError, RedisClusterException)

# What one read or take-over returned: entries by stream (phase 3 has one stream, phase 4 one
# per shard; an entry id is unique only within its stream).
Read = dict[str, list[Entry]]


class Writer:
    # Reads that fill a batch while SIGNUP_WRITER_MAX_WAIT_MS runs: a blocking read returns
    # with the first entry, so more reads take more of a busy stream at each.
    fill_reads = 5

    def __init__(self, settings: Settings, stop: asyncio.Event, consumer: str = "") -> None:
        self.settings = settings
        self.stop = stop
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.streams: tuple[str, ...] = (settings.stream,)
        self.redis: Redis | RedisCluster = self._connect()
        self._forget = self.redis.register_script(FORGET)
        self._create_group = self.redis.register_script(CREATE_GROUP)
        self._acknowledge_script = self.redis.register_script(ACKNOWLEDGE)
        self.pg: psycopg.AsyncConnection | None = None
        # A batch that takes longer than this is abandoned and retried, so a live writer's
        # entries never reach the claim idle time and are never taken over while in flight.
        self.flush_timeout = settings.writer_claim_idle_ms / 2000
        self.claim_every = min(5.0, max(0.05, settings.writer_claim_idle_ms / 4000))
        self.claim_cursor: dict[str, bytes | str] = {}
        self.next_claim = 0.0
        # Streams whose pending list was walked to its end in this round of take-overs.
        self.claimed: set[str] = set()
        self.next_sample = 0.0
        # Consecutive Redis failures: the backoff grows while Redis stays down.
        self.redis_failures = 0
        # After a failed read or claim, entries may sit in our own pending list without us
        # having received them; the next read fetches those first (id 0, not ">").
        self.reread_own = False

    def _connect(self) -> Redis | RedisCluster:
        return _stream.connect(
            self.settings.redis_url,
            max_connections=2,
            pool_timeout=5.0,
            reply_timeout=IDLE_BLOCK_MS / 1000 + _stream.REPLY_TIMEOUT,
            # No silent retry: a read whose reply was lost has still moved its entries into
            # our pending list, and only the loop knows to fetch them back (see _read).
            retries=0,
        )

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        log.info(
            "writer %s reading %s as group %s",
            self.consumer,
            ", ".join(self.streams),
            _stream.GROUP,
        )
        await self._ensure_group()
        try:
            while not self.stop.is_set():
                claimed = await self._claim()
                entries = claimed or await self._read()
                if entries:
                    batches = {stream: parse(got) for stream, got in entries.items() if got}
                    await self._flush(batches, redelivered=bool(claimed))
                await self._sample()
                metrics.writer().last_flush.set(time.time())
        finally:
            await self.close()
        log.info("writer %s stopped", self.consumer)

    async def close(self) -> None:
        await self._drop_pg()
        await self.redis.aclose()

    async def _ensure_group(self) -> None:
        for stream in self.streams:
            await self._ensure_group_of(stream)

    async def _ensure_group_of(self, stream: str) -> None:
        attempt = 0
        while not self.stop.is_set():
            try:
                await self._create_group(keys=[stream], args=[_stream.GROUP])
                log.info("created consumer group %s on %s", _stream.GROUP, stream)
                return
            except ResponseError as exc:
                if "BUSYGROUP" in str(exc):
                    return
                raise
            except REDIS_FAILURES as exc:
                log.warning("redis unavailable (%s); retrying", exc)
                metrics.writer().errors.labels("read").inc()
                await self._backoff(attempt)
                attempt += 1

    async def _on_redis_error(self, stage: str, exc: RedisError | RedisClusterException) -> None:
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            # The stream or the group vanished: Redis lost its data (or someone deleted it).
            log.error(
                "consumer group missing, recreating it; if Redis lost its data, run "
                "`signup-writer --rebuild-claims` to restore the claims of recorded emails"
            )
            await self._ensure_group()
            return
        metrics.writer().errors.labels(stage).inc()
        log.warning("%s failed: %s", stage, exc)
        self.reread_own = True
        await self._backoff(self.redis_failures)
        self.redis_failures += 1

    async def _claim(self) -> Read:
        """Entries of writers that stopped, following each stream's XAUTOCLAIM cursor through
        its PEL; one stream a call, in turn."""
        if time.monotonic() < self.next_claim:
            return {}
        stream = next((s for s in self.streams if s not in self.claimed), None)
        if stream is None:  # every stream walked to its end: rest, then start again
            self.claimed.clear()
            self.next_claim = time.monotonic() + self.claim_every
            return {}
        try:
            cursor, entries, *deleted = await self.redis.xautoclaim(
                stream,
                _stream.GROUP,
                self.consumer,
                min_idle_time=self.settings.writer_claim_idle_ms,
                start_id=self.claim_cursor.get(stream, "0-0"),
                count=self.settings.writer_batch_size,
            )
            gone = deleted[0] if deleted else []  # pending ids whose entries were deleted
            if gone:
                await self.redis.xack(stream, _stream.GROUP, *gone)
            self.claim_cursor[stream] = cursor
            if cursor in (b"0-0", "0-0"):
                self.claimed.add(stream)
                await self._forget_gone_consumers(stream)
        except REDIS_FAILURES as exc:
            self.next_claim = time.monotonic() + self.claim_every
            await self._on_redis_error("claim", exc)
            return {}
        found: list[Entry] = [e for e in entries if e[0] is not None]
        if found:
            metrics.writer().redeliveries.inc(len(found))
            log.info("took over %d entries idle for %d ms", len(found), self.claim_idle_ms)
        return {stream: found} if found else {}

    @property
    def claim_idle_ms(self) -> int:
        return self.settings.writer_claim_idle_ms

    async def _forget_gone_consumers(self, stream: str) -> None:
        forget_after = max(FORGET_CONSUMER_MS, 2 * self.claim_idle_ms)
        for consumer in await self.redis.xinfo_consumers(stream, _stream.GROUP):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if (
                name != self.consumer
                and not consumer["pending"]
                and consumer["idle"] > forget_after
            ):
                await self._forget(keys=[stream], args=[_stream.GROUP, name])

    async def _read(self) -> Read:
        """Up to a batch of new entries: wait up to a second for the first, then at most
        SIGNUP_WRITER_MAX_WAIT_MS for the batch to fill."""
        size = self.settings.writer_batch_size
        try:
            if self.reread_own:
                own = await self._xread(size, None, start="0")
                self.redis_failures = 0
                if own:
                    log.info(
                        "%d entries of ours were read but not received; writing them",
                        _count(own),
                    )
                    return own
                self.reread_own = False
            got = await self._xread(size, IDLE_BLOCK_MS)
        except REDIS_FAILURES as exc:
            await self._on_redis_error("read", exc)
            return {}
        self.redis_failures = 0
        max_wait = self.settings.writer_max_wait_ms / 1000
        deadline = time.monotonic() + max_wait
        while got and _count(got) < size and not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Let entries gather, then take them in one read. A blocking read returns with
            # the first new entry: at a few thousand signups a second that was a round trip
            # for every one or two entries, and most of the writer's CPU.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), min(remaining, max_wait / self.fill_reads))
            if self.stop.is_set():
                break  # write what is in hand; read nothing more into our pending list
            try:
                more = await self._xread(size - _count(got), None)
            except REDIS_FAILURES as exc:
                # Write what we have now; whatever this read moved to our pending list is
                # fetched back by the next read.
                log.warning("read failed while filling a batch: %s", exc)
                metrics.writer().errors.labels("read").inc()
                self.reread_own = True
                break
            for stream, entries in more.items():
                got.setdefault(stream, []).extend(entries)
        return got

    async def _xread(self, count: int, block_ms: int | None, start: str = ">") -> Read:
        """New entries (">"), or with start="0" the ones already delivered to us."""
        response = await self.redis.xreadgroup(
            _stream.GROUP,
            self.consumer,
            dict.fromkeys(self.streams, start),
            count=count,
            block=block_ms,
        )
        got: Read = {}
        for name, items in cast(list[tuple[bytes, list[Entry]]], response or []):
            if items:
                got[name.decode()] = items
        return got

    # --- one batch -------------------------------------------------------------------------
    async def _flush(self, batches: dict[str, Batch], redelivered: bool) -> None:
        """Insert the rows of every stream's batch in one transaction, then acknowledge them."""
        started = time.perf_counter()
        rows = [row for batch in batches.values() for row in batch.rows]
        inserted = await self._insert(rows)
        if inserted is None:
            return  # stopping while PostgreSQL is down: the entries stay pending
        committed = time.time()
        if not await self._acknowledge(batches):
            return
        metrics.writer().flush_duration.observe(time.perf_counter() - started)
        metrics.writer().batch_size.observe(sum(len(batch) for batch in batches.values()))
        metrics.writer().rows.inc(len(inserted))
        dropped = len(rows) - len(inserted)
        dropped += sum(batch.in_batch_duplicates for batch in batches.values())
        if dropped:
            metrics.writer().duplicates.inc(dropped)
            log.info("%d entries already had a row (redelivered=%s)", dropped, redelivered)
        new = set(inserted)
        for email, _first, _last, accepted_at in rows:
            if email in new:
                metrics.writer().accept_to_row.observe(
                    max(0.0, committed - accepted_at.timestamp())
                )

    async def _insert(self, rows: list[_insert.Row]) -> list[str] | None:
        """Insert until committed; None if asked to stop while PostgreSQL fails."""
        if not rows:
            return []
        insert = _insert.copy_staging if len(rows) >= COPY_FROM else _insert.unnest
        attempt = 0
        while True:
            try:
                conn = await self._pg()
                started = time.perf_counter()
                async with asyncio.timeout(self.flush_timeout):
                    inserted = await insert(conn, "users", rows)
                metrics.writer().query_duration.labels("insert_batch").observe(
                    time.perf_counter() - started
                )
                return inserted
            except (psycopg.Error, OSError, TimeoutError) as exc:
                metrics.writer().errors.labels("insert").inc()
                log.warning("insert of %d rows failed (attempt %d): %s", len(rows), attempt, exc)
                await self._drop_pg()
                if self.stop.is_set():
                    return None
                await self._backoff(attempt)
                attempt += 1

    async def _acknowledge(self, batches: dict[str, Batch]) -> bool:
        """Mark the claims recorded, XACK and XDEL, in one script per stream. Rows are
        committed by now, so on failure a redelivery is harmless; retry until it works or we
        are stopping. (Each step is idempotent, so a stream acknowledged twice is harmless.)"""
        attempt = 0
        while True:
            try:
                for stream, batch in batches.items():
                    keys, args = acknowledgement(stream, batch)
                    await self._acknowledge_script(keys=keys, args=args)
                return True
            except REDIS_FAILURES as exc:
                metrics.writer().errors.labels("ack").inc()
                count = sum(len(batch) for batch in batches.values())
                log.warning("acknowledging %d entries failed: %s", count, exc)
                if self.stop.is_set() and attempt >= 3:
                    return False
                await self._backoff(attempt)
                attempt += 1

    # --- helpers ---------------------------------------------------------------------------
    async def _pg(self) -> psycopg.AsyncConnection:
        if self.pg is None or self.pg.closed or self.pg.broken:
            self.pg = await psycopg.AsyncConnection.connect(
                self.settings.database_url,
                autocommit=True,
                connect_timeout=5,
                prepare_threshold=self.settings.prepare_threshold,
                application_name="signup-writer",
            )
        return self.pg

    async def _drop_pg(self) -> None:
        if self.pg is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self.pg.close()
            self.pg = None

    async def _backoff(self, attempt: int) -> None:
        """Capped exponential backoff with jitter, cut short by a stop request."""
        delay = min(MAX_BACKOFF, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=delay)

    async def _sample(self) -> None:
        """Queue depth and lag, about once a second (every writer reports the same values)."""
        now = time.monotonic()
        if now < self.next_sample:
            return
        self.next_sample = now + 1.0
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for stream in self.streams:
                    pipe.xlen(stream)
                    pipe.xrange(stream, count=1)
                replies = await pipe.execute()
        except REDIS_FAILURES:
            return  # the loop's own reads count Redis failures
        metrics.writer().queue_depth.set(sum(replies[0::2]))
        firsts = [int(first[0][0].split(b"-")[0]) for first in replies[1::2] if first]
        oldest = max(0.0, time.time() - min(firsts) / 1000) if firsts else 0.0
        metrics.writer().queue_oldest_age.set(oldest)


def _count(read: Read) -> int:
    return sum(len(entries) for entries in read.values())
