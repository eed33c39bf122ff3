"""Between steps: wait until the target has done all the work k6 handed it.

No request may still be in flight in any app replica, and in phases 3 and 4 the stream (in
phase 4 every shard's) must be empty (the writer deletes an entry only after its row is
committed), so the next step starts from rest and the CPU measured around a run includes the
writer's work for that run. Waiting looks at the app's gauge and Redis's XLEN, never at
`count(*)`, which would itself cost the database CPU inside the measured window; the rows are
counted once, at the end (`check`)."""

from __future__ import annotations

import dataclasses
import time

import psycopg
import redis
from redis.cluster import RedisCluster

from lab.bench import _probe
from lab.bench._steps import Step
from lab.native.stack import Stack
from signup import _shards
from signup.config import Settings


class Settler:
    def __init__(self, stack: Stack, *, has_db: bool, timeout: float) -> None:
        self.stack = stack
        self.has_db = has_db
        self.timeout = timeout
        self.acknowledged = 0
        self.apps = [f"http://{a}" for a in stack.ctx.members.get("app", [])]
        app = stack.ctx.rewrite(stack.ctx.topology["app"].environment)
        settings = Settings.from_env(app)
        self.streams: tuple[str, ...] = ()
        self.redis: redis.Redis | RedisCluster | None = None
        if settings.store == "queue":
            self.redis, self.streams = redis.Redis.from_url(settings.redis_url), (settings.stream,)
        elif settings.store == "cluster":
            # Any node tells the client where the others and the slots are.
            host, port = settings.redis_cluster_nodes[0]
            self.redis = RedisCluster(host=host, port=port)
            self.streams = _shards.streams(settings.stream, settings.shards)

    def _idle(self) -> bool:
        return _probe.sum_metric(self.apps, "signup_requests_in_flight") == 0 and not self.backlog()

    def backlog(self) -> int:
        if self.redis is None:
            return 0
        return sum(int(self.redis.xlen(stream)) for stream in self.streams)

    def after(self, step: Step) -> Step:
        """The step with the backlog it left (phases 3 and 4), once that backlog is written."""
        self.acknowledged += step.acknowledged
        step = dataclasses.replace(step, backlog=self.backlog())
        deadline = time.monotonic() + self.timeout
        while not self._idle():
            if time.monotonic() > deadline:
                raise TimeoutError(f"work not finished {self.timeout:.0f}s after the step")
            time.sleep(0.05)  # polling a real condition, bounded by the deadline
        return step

    def rows(self) -> int:
        with psycopg.connect(self.stack.database_url(), connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM users").fetchone()
        return int(row[0]) if row else 0

    def check(self) -> dict[str, int] | None:
        """Acknowledged signups against rows: none may be missing."""
        if not self.has_db:
            return None
        rows = self.rows()
        if self.redis is not None:
            self.redis.close()
        return {
            "acknowledged": self.acknowledged,
            "rows": rows,
            "missing": max(0, self.acknowledged - rows),
        }
