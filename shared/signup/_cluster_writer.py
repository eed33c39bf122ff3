"""Phase 4's writer: phase 3's loop over one stream per shard of a Redis Cluster.

Every writer reads every shard's stream as one consumer of each stream's group, gathers what
they hold into one batch, inserts it in one transaction and acknowledges each stream on its own
node. The shards' streams live on different primaries, and one XREADGROUP may only name keys of
one slot, so a read is a pipeline of one non-blocking XREADGROUP per stream (redis-py sends it
as one round trip per node); when all are empty the writer sleeps SIGNUP_WRITER_MAX_WAIT_MS.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import cast

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from signup import _shards, _stream
from signup._batch import Entry
from signup._writer import Read, Writer, log
from signup.config import Settings
from signup.stores.cluster import connect, refresh


class ClusterWriter(Writer):
    def __init__(self, settings: Settings, stop: asyncio.Event, consumer: str = "") -> None:
        super().__init__(settings, stop, consumer)
        self.streams = _shards.streams(settings.stream, settings.shards)

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

    async def _xread(self, count: int, block_ms: int | None, start: str = ">") -> Read:
        per_stream = max(1, math.ceil(count / len(self.streams)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xreadgroup(_stream.GROUP, self.consumer, {stream: start}, count=per_stream)
            # One node failing must not stop the others' shards: their entries are taken, the
            # failed ones read again once the layout is known again (a failed read may still
            # have moved entries into our pending list, hence reread_own).
            replies = await pipe.execute(raise_on_error=False)
        got: Read = {}
        failed = [r for r in replies if isinstance(r, Exception)]
        for stream, reply in zip(self.streams, replies, strict=True):
            if isinstance(reply, Exception):
                continue
            for _name, items in cast(list[tuple[bytes, list[Entry]]], reply or []):
                if items:
                    got.setdefault(stream, []).extend(items)
        if failed and not got:
            raise failed[0]
        if failed:
            log.warning("%d of %d streams unreadable: %s", len(failed), len(replies), failed[0])
            self.reread_own = True
            await self._refresh()
        if not got and block_ms:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stop.wait(), min(block_ms, self.settings.writer_max_wait_ms) / 1000
                )
        return got
