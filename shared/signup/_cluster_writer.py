"""Phase 4's writer: phase 3's loop over one stream per shard of a Redis Cluster.

Every writer reads every shard's stream as one consumer of each stream's group, gathers what
they hold into one batch, inserts it in one transaction and acknowledges each stream on its own
node. The shards' streams live on different primaries, and one XREADGROUP may only name keys of
one slot, so a read is a pipeline of one non-blocking XREADGROUP per stream (redis-py sends it
as one round trip per node); when all are empty the writer sleeps SIGNUP_WRITER_MAX_WAIT_MS.

A node that fails stops only its own shards. A read takes what the other nodes hold; an
acknowledgement that fails is not retried in place (phase 3's writer waits for its one Redis,
which would hold every shard here for a whole failover): its rows are committed, its entries
stay pending, and the writer reads its own pending entries again once the node (or its promoted
replica) answers, inserts them (the unique index drops them) and acknowledges them then (or,
at the latest, takes them over after SIGNUP_WRITER_CLAIM_IDLE_MS, as any stopped writer's).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from signup import _shards, _stream, metrics
from signup._batch import ACKNOWLEDGE, Batch, Entry, acknowledgement
from signup._writer import REDIS_FAILURES, Read, Writer, log
from signup.config import Settings
from signup.stores.cluster import BREAK_SECONDS, connect, refresh


class ClusterWriter(Writer):
    # A read here is one XREADGROUP per shard, most of them empty at any moment: the five fill
    # reads of phase 3's writer made 72 of them per batch, half of each primary's CPU under
    # the scale model's quota. One read after the wait takes what gathered meanwhile.
    fill_reads = 1

    def __init__(self, settings: Settings, stop: asyncio.Event, consumer: str = "") -> None:
        super().__init__(settings, stop, consumer)
        self.streams = _shards.streams(settings.stream, settings.shards)
        # Nodes that just failed, and until when they are not tried again.
        self._down: dict[str, float] = {}

    def _connect(self) -> Redis | RedisCluster:
        return connect(self.settings, max_connections=2)

    async def _on_redis_error(self, stage: str, exc: RedisError | RedisClusterException) -> None:
        await super()._on_redis_error(stage, exc)
        await self._refresh()

    async def _refresh(self) -> None:
        """A node failed or a slot moved: learn the cluster's layout again."""
        try:
            await refresh(cast(RedisCluster, self.redis))
        except (RedisError, RedisClusterException) as failed:
            log.warning("cannot read the cluster's layout yet: %s", failed)

    async def _acknowledge(self, batches: dict[str, Batch]) -> bool:
        """Every stream's acknowledgement: a pipeline per node (see `_each_node`)."""

        def queue(pipe: ClusterPipeline, stream: str) -> None:
            keys, args = acknowledgement(stream, batches[stream])
            # EVAL, not EVALSHA: a replica promoted a moment ago has no script cache.
            pipe.eval(ACKNOWLEDGE, len(keys), *keys, *args)

        replies = await self._each_node(list(batches), queue)
        failed = [(s, r) for s, r in replies.items() if isinstance(r, BaseException)]
        if failed:
            metrics.writer().errors.labels("ack").inc()
            count = sum(len(batches[s]) for s, _ in failed)
            log.warning(
                "acknowledging %d entries of %d streams failed, they stay pending: %s",
                count,
                len(failed),
                failed[0][1],
            )
            self.reread_own = True
            await self._refresh()
        return True

    async def _each_node(
        self, streams: list[str], queue: Callable[[ClusterPipeline, str], None]
    ) -> dict[str, Any]:
        """`queue(pipe, stream)` for every stream, in one pipeline per node: the reply of each
        stream, or the exception of its node. One pipeline over every node fails as a whole
        when one node cannot be reached, even with raise_on_error=False. The nodes go one
        after the other: pipelines of one client run side by side ran out of its connections
        (MaxConnectionsError) and kept failing after, here; the breaker keeps a node that is
        gone from costing every read a connect timeout."""
        cluster = cast(RedisCluster, self.redis)
        await cluster.initialize()  # once; a no-op after
        groups: dict[str, list[str]] = {}
        replies: dict[str, Any] = {}
        for stream in streams:
            node = cluster.get_node_from_key(stream)
            name = node.name if node else ""
            if self._down.get(name, 0.0) > time.monotonic():
                # As the store does: a node that just failed is not tried again for a moment,
                # or every read would wait a connect timeout for it.
                replies[stream] = RedisConnectionError(f"{name} failed just now")
            else:
                groups.setdefault(name, []).append(stream)

        async def run(names: list[str]) -> list[Any]:
            async with cluster.pipeline(transaction=False) as pipe:
                for name in names:
                    queue(pipe, name)
                return await pipe.execute(raise_on_error=False)

        results = [await _caught(run(g)) for g in groups.values()]
        for (name, names), result in zip(groups.items(), results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, REDIS_FAILURES):
                    raise result
                self._down[name] = time.monotonic() + BREAK_SECONDS
                replies.update(dict.fromkeys(names, result))
            else:
                replies.update(zip(names, result, strict=True))
        return replies

    async def _xread(self, count: int, block_ms: int | None, start: str = ">") -> Read:
        per_stream = max(1, math.ceil(count / len(self.streams)))

        def queue(pipe: ClusterPipeline, stream: str) -> None:
            pipe.xreadgroup(_stream.GROUP, self.consumer, {stream: start}, count=per_stream)

        # One node failing must not stop the others' shards: their entries are taken, the
        # failed ones read again once the layout is known again (a failed read may still have
        # moved entries into our pending list, hence reread_own).
        replies = await self._each_node(list(self.streams), queue)
        got: Read = {}
        failed = [r for r in replies.values() if isinstance(r, BaseException)]
        for stream, reply in replies.items():
            if isinstance(reply, BaseException):
                continue
            for _name, items in cast(list[tuple[bytes, list[Entry]]], reply or []):
                if items:
                    got.setdefault(stream, []).extend(items)
        if len(failed) == len(replies):
            raise failed[0]  # nothing answers: the loop backs off
        if failed:
            log.warning("%d of %d streams unreadable: %r", len(failed), len(replies), failed[0])
            self.reread_own = True
            await self._refresh()
        if not got and block_ms:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stop.wait(), min(block_ms, self.settings.writer_max_wait_ms) / 1000
                )
        return got


async def _caught(work: Coroutine[Any, Any, list[Any]]) -> list[Any] | BaseException:
    try:
        return await work
    except Exception as exc:  # sorted by the caller: a Redis failure, or raised again
        return exc
