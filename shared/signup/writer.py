"""Phase 3's writer: drain the signup stream into PostgreSQL in batches, at least once.

`python -m signup.writer` (or `signup-writer`); run one or more. Each process reads the stream
as one consumer of a group, inserts a batch in one transaction (`ON CONFLICT (email) DO
NOTHING`, so a redelivered entry cannot become a second row), commits, and only then marks the
claims recorded, acknowledges and deletes the entries. A writer that dies leaves its entries
pending; another (or its restarted self) takes them over with XAUTOCLAIM once they have been
idle for SIGNUP_WRITER_CLAIM_IDLE_MS. SIGTERM finishes the current batch, then exits.

`--rebuild-claims` refills Redis's claims from the table, for a Redis that lost its data.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
import time

import psycopg
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from signup import _shards, _stream, metrics
from signup._cluster_writer import ClusterWriter
from signup._writer import Writer
from signup.config import Settings, SettingsError
from signup.stores.cluster import connect as cluster_connect


async def rebuild_claims(settings: Settings, chunk: int = 10_000) -> int:
    """Mark every email that has a row as recorded; return how many. Also drops the single
    hash of emails earlier versions kept: the table holds every email it had recorded."""
    redis: Redis | RedisCluster
    if settings.store == "cluster":
        redis = cluster_connect(settings, max_connections=4)
    else:
        redis = _stream.connect(settings.redis_url, max_connections=1, pool_timeout=5.0)
    count = 0
    try:
        async with (
            await psycopg.AsyncConnection.connect(
                settings.database_url, prepare_threshold=settings.prepare_threshold
            ) as conn,
            conn.cursor(name="signup_claims") as cur,
        ):
            await cur.execute("SELECT email FROM users")
            while rows := await cur.fetchmany(chunk):
                async with redis.pipeline(transaction=False) as pipe:
                    for (email,) in rows:
                        pipe.hset(*_claim_slot(settings, email), _stream.RECORDED)
                    await pipe.execute()
                count += len(rows)
        if settings.store != "cluster":
            await redis.unlink(_stream.legacy_claims_key(settings.stream))
    finally:
        await redis.aclose()
    return count


def _claim_slot(settings: Settings, email: str) -> tuple[str, bytes]:
    if settings.store == "cluster":
        return _stream.claim_slot(_shards.stream_of(settings.stream, settings.shards, email), email)
    return _stream.claim_slot(settings.stream, email)


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if settings.store == "cluster":
        await ClusterWriter(settings, stop).run()
    else:
        await Writer(settings, stop).run()


def _metrics_addr(raw: str) -> str:
    """The address /metrics binds: 0.0.0.0 in a container, loopback natively."""
    value = raw.strip() or "0.0.0.0"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SettingsError(f"SIGNUP_WRITER_METRICS_ADDR={raw!r} is not an IP address") from None
    return value


def _registry() -> CollectorRegistry:
    """What the writer's /metrics serves: its own series and its process's CPU and memory."""
    reg = metrics.writer().registry
    ProcessCollector(registry=reg)
    return reg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signup-writer", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rebuild-claims",
        action="store_true",
        help="mark every email of the users table as recorded in Redis, then exit",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        redis = (
            (
                "SIGNUP_REDIS_CLUSTER_NODES",
                ",".join(f"{h}:{p}" for h, p in settings.redis_cluster_nodes),
            )
            if settings.store == "cluster"
            else ("SIGNUP_REDIS_URL", settings.redis_url)
        )
        for name, value in (redis, ("SIGNUP_DATABASE_URL", settings.database_url)):
            if not value:
                raise SettingsError(f"{name} is required by the writer")
        metrics_addr = _metrics_addr(os.environ.get("SIGNUP_WRITER_METRICS_ADDR", ""))
    except SettingsError as exc:
        print(f"signup-writer: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.rebuild_claims:
        started = time.monotonic()
        try:
            count = asyncio.run(rebuild_claims(settings))
        except (psycopg.Error, RedisError, RedisClusterException) as exc:
            print(f"signup-writer: rebuilding claims failed: {exc}", file=sys.stderr)
            return 1
        took = time.monotonic() - started
        print(f"claims rebuilt: {count} emails marked recorded in {took:.1f} s", flush=True)
        return 0
    server = None
    if settings.writer_metrics_port:
        server, _thread = start_http_server(
            settings.writer_metrics_port, addr=metrics_addr, registry=_registry()
        )
    try:
        asyncio.run(_serve(settings))
    finally:
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
