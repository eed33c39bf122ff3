"""Phase 4's writer as it runs for real: `python -m signup.writer` with SIGNUP_STORE=cluster,
a real Redis Cluster (six nodes on loopback) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from lab._proc import ServerProcess, free_port
from lab.runtime import http_ok
from signup import _shards, _stream
from signup.config import Settings
from signup.stores.cluster import ClusterStore
from signup.validation import SignupRequest
from signup.writer import rebuild_claims
from tests import _cluster
from tests._probe import scrape, wait_until
from tests.conftest import RedisCluster, child_env

STREAM = "signups"
SHARDS = 12


def settings(cluster: RedisCluster, database_url: str = "") -> Settings:
    return Settings(
        store="cluster",
        redis_cluster_nodes=tuple(("127.0.0.1", n.port) for n in cluster.nodes),
        shards=SHARDS,
        pool_max=8,
        wait_replicas=0,
        database_url=database_url,
    )


def accept(cluster: RedisCluster, emails: list[str]) -> None:
    store = ClusterStore(settings(cluster))

    async def run() -> None:
        try:
            for first in range(0, len(emails), 100):
                chunk = [SignupRequest(e, "Ada", "Lovelace") for e in emails[first : first + 100]]
                await asyncio.gather(*map(store.create, chunk))
        finally:
            await store.close()

    asyncio.run(run())


def primary_of(cluster: RedisCluster, stream: str) -> redis.Redis:
    node = _cluster.owner(cluster.addresses.split(",")[0], stream)
    return redis.Redis(host=node.host, port=node.port)


def waiting(cluster: RedisCluster) -> int:
    """Entries in every shard's stream, plus those read and not acknowledged."""
    total = 0
    for stream in _shards.streams(STREAM, SHARDS):
        with primary_of(cluster, stream) as client:
            if client.exists(stream):
                total += int(client.xlen(stream))
                total += int(client.xpending(stream, _stream.GROUP)["pending"])
    return total


def claim(cluster: RedisCluster, email: str) -> str | None:
    stream = _shards.stream_of(STREAM, SHARDS, email)
    with primary_of(cluster, stream) as client:
        value = client.hget(*_stream.claim_slot(stream, email))
    return _stream.status_of(value if isinstance(value, bytes) else None)


def rows(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT email, count(*) FROM users GROUP BY email").fetchall()
    return {email: count for email, count in found}


@pytest.fixture
def writer(
    tmp_path: Path, redis_cluster: RedisCluster, clean_users: str
) -> Iterator[ServerProcess]:
    redis_cluster.flush()
    port = free_port()
    process = ServerProcess(
        [sys.executable, "-m", "signup.writer"],
        check=lambda: http_ok(f"http://127.0.0.1:{port}/metrics"),
        port=port,
        log_file=tmp_path / "writer.log",
        env=child_env(
            SIGNUP_STORE="cluster",
            SIGNUP_REDIS_CLUSTER_NODES=redis_cluster.addresses,
            SIGNUP_SHARDS=str(SHARDS),
            SIGNUP_DATABASE_URL=clean_users,
            SIGNUP_WRITER_METRICS_PORT=str(port),
            SIGNUP_WRITER_METRICS_ADDR="127.0.0.1",
            SIGNUP_WRITER_BATCH_SIZE="300",
        ),
        timeout=30,
        stop_signal=signal.SIGTERM,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_drains_every_shard_into_exactly_one_row_each(
    writer: ServerProcess, redis_cluster: RedisCluster, clean_users: str
) -> None:
    wanted = [f"shard-{n}@example.com" for n in range(1500)]
    accept(redis_cluster, wanted)
    assert len({_shards.stream_of(STREAM, SHARDS, e) for e in wanted}) == SHARDS
    wait_until(lambda: waiting(redis_cluster) == 0, timeout=60, what="every shard drained")
    assert rows(clean_users) == dict.fromkeys(wanted, 1)
    assert {claim(redis_cluster, e) for e in wanted[::50]} == {"recorded"}
    samples = scrape(f"http://127.0.0.1:{writer.port}/metrics")
    assert samples["signup_writer_rows_inserted_total"] == 1500
    assert samples["signup_writer_batch_size_sum"] == 1500


def test_reading_the_shards_asks_no_node_where_their_keys_are(
    writer: ServerProcess, redis_cluster: RedisCluster, clean_users: str
) -> None:
    """redis-py leaves XREADGROUP's keys to the server (COMMAND GETKEYS before every read),
    unless the client reads them itself: the writer's polling must not cost a node a round
    trip per read."""
    wanted = [f"keys-{n}@example.com" for n in range(200)]
    accept(redis_cluster, wanted)
    wait_until(lambda: waiting(redis_cluster) == 0, timeout=60, what="every shard drained")
    reads = getkeys = 0
    for node in redis_cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            stats = client.info("commandstats")
        reads += int(stats.get("cmdstat_xreadgroup", {}).get("calls", 0))
        getkeys += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    assert reads > 0, "the writer read the shards"
    assert getkeys == 0


def test_rebuilding_claims_marks_each_row_on_its_shard(
    redis_cluster: RedisCluster, clean_users: str
) -> None:
    redis_cluster.flush()
    with psycopg.connect(clean_users, autocommit=True) as conn:
        for n in range(50):
            conn.execute(
                "INSERT INTO users (email, first_name, last_name) VALUES (%s, 'A', 'B')",
                (f"old-{n}@example.com",),
            )
    count = asyncio.run(rebuild_claims(settings(redis_cluster, clean_users)))
    assert count == 50
    assert {claim(redis_cluster, f"old-{n}@example.com") for n in range(50)} == {"recorded"}
