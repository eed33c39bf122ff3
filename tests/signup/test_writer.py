"""The writer as it runs for real: `python -m signup.writer` processes, a real Redis with AOF,
a real PostgreSQL. Signups are accepted through the real QueueStore."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import redis

from lab._proc import ServerProcess, free_port
from lab.native.postgres import Cluster
from lab.runtime import http_ok
from signup import _insert, _stream, migrate
from signup._writer import IDLE_BLOCK_MS
from signup.config import Settings
from signup.stores import DuplicateEmail
from signup.stores.queue import QueueStore
from signup.validation import SignupRequest
from tests._probe import scrape, wait_until
from tests.conftest import RedisServer, child_env, server_folder

STREAM = "signups"
StartWriter = Callable[..., ServerProcess]


def accept(redis_url: str, emails: list[str], first_name: str = "Ada") -> list[dict[str, object]]:
    """Accept signups the way the API does (QueueStore), `chunk` at a time."""
    store = QueueStore(
        Settings(store="queue", redis_url=redis_url, pool_max=8, max_backlog=1_000_000)
    )

    async def run() -> list[dict[str, object]]:
        users: list[dict[str, object]] = []
        try:
            for first in range(0, len(emails), 100):
                chunk = emails[first : first + 100]
                requests = [SignupRequest(e, first_name, "Lovelace") for e in chunk]
                users.extend(await asyncio.gather(*map(store.create, requests)))
        finally:
            await store.close()
        return users

    return asyncio.run(run())


def status(client: redis.Redis, email: str) -> str | None:
    return _stream.status_of(cast(bytes | None, client.hget(*_stream.claim_slot(STREAM, email))))


def emails(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(count)]


def rows(database_url: str) -> dict[str, tuple[str, datetime]]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT email, first_name, created_at FROM users").fetchall()
    result = {email: (first, created) for email, first, created in found}
    assert len(result) == len(found)  # the unique index, checked anyway
    return result


def backlog(client: redis.Redis) -> int:
    return int(client.xlen(STREAM))


def pending(client: redis.Redis, consumer: str | None = None) -> int:
    if consumer is None:
        return int(client.xpending(STREAM, _stream.GROUP)["pending"])
    found = client.xpending_range(STREAM, _stream.GROUP, "-", "+", 10_000, consumername=consumer)
    return len(found)


def drained(client: redis.Redis) -> Callable[[], bool]:
    return lambda: backlog(client) == 0 and pending(client) == 0


def writer_metrics(process: ServerProcess) -> dict[str, float]:
    return scrape(f"http://127.0.0.1:{process.port}/metrics")


def stop(process: ServerProcess) -> None:
    """Stop a writer that may already be dead (SIGKILLed on purpose)."""
    if process.process is not None:
        process.stop(expected_returncode=process.exit_code())


def kill(process: ServerProcess) -> None:
    """SIGKILL: no chance to finish a batch or acknowledge anything."""
    assert process.process is not None
    process.process.send_signal(signal.SIGKILL)
    process.process.wait(timeout=30)
    stop(process)


@pytest.fixture
def client(clean_redis: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(clean_redis) as connection:
        yield connection


@pytest.fixture
def start_writer(tmp_path: Path, clean_redis: str, clean_users: str) -> Iterator[StartWriter]:
    started: list[ServerProcess] = []

    def start(database_url: str = clean_users, **env: str) -> ServerProcess:
        port = free_port()
        settings = {
            "SIGNUP_REDIS_URL": clean_redis,
            "SIGNUP_DATABASE_URL": database_url,
            "SIGNUP_WRITER_METRICS_PORT": str(port),
            "SIGNUP_WRITER_METRICS_ADDR": "127.0.0.1",
            "SIGNUP_WRITER_CLAIM_IDLE_MS": "500",
            **env,
        }
        process = ServerProcess(
            [sys.executable, "-m", "signup.writer"],
            check=lambda: http_ok(f"http://127.0.0.1:{port}/metrics"),
            port=port,
            log_file=tmp_path / f"writer-{len(started)}.log",
            env=child_env(**settings),
            timeout=30,
        )
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            stop(process)


def test_drains_every_signup_into_exactly_one_row(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    wanted = emails("drain", 2000)
    users = accept(clean_redis, wanted)
    assert {status(client, e) for e in wanted} == {"pending"}
    writer = start_writer(SIGNUP_WRITER_BATCH_SIZE="500")
    wait_until(drained(client), what="backlog drained")
    found = rows(clean_users)
    assert set(found) == set(wanted)
    # The row's created_at is the accept time the 202 told the user.
    assert all(found[str(u["email"])][1] == u["created_at"] for u in users)
    assert {status(client, e) for e in wanted} == {"recorded"}
    wait_until(lambda: writer_metrics(writer)["signup_queue_depth"] == 0, what="depth 0")
    samples = writer_metrics(writer)
    assert samples["signup_writer_rows_inserted_total"] == 2000
    assert samples["signup_writer_duplicates_dropped_total"] == 0
    assert samples["signup_writer_batch_size_count"] >= 4  # batches of at most 500
    assert samples["signup_writer_batch_size_sum"] == 2000
    assert samples["signup_accept_to_row_seconds_count"] == 2000
    assert samples["signup_writer_last_flush_timestamp_seconds"] > 0


def test_a_batch_of_more_ids_than_lua_can_unpack_is_acknowledged(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    # Lua's unpack() stops near 8,000 values; a batch may hold up to 50,000 entries.
    wanted = emails("big", 9000)
    accept(clean_redis, wanted)
    writer = start_writer(SIGNUP_WRITER_BATCH_SIZE="10000", SIGNUP_WRITER_MAX_WAIT_MS="1000")
    wait_until(drained(client), what="one batch of 9,000 written and acknowledged")
    assert set(rows(clean_users)) == set(wanted)
    samples = writer_metrics(writer)
    assert (samples["signup_writer_batch_size_count"], samples["signup_writer_batch_size_sum"]) == (
        1,
        9000,
    )
    assert status(client, wanted[-1]) == "recorded"


def test_takes_over_the_entries_of_a_dead_writer(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    wanted = emails("orphan", 300)
    accept(clean_redis, wanted)
    client.xgroup_create(STREAM, _stream.GROUP, id="0")
    # A writer that read everything, committed the first 100 rows, and died before its XACK.
    read = client.xreadgroup(_stream.GROUP, "dead-writer", {STREAM: ">"}, count=1000)
    assert len(cast(list[list[Any]], read)[0][1]) == 300
    with psycopg.connect(clean_users) as conn:
        for email in wanted[:100]:
            conn.execute(
                "INSERT INTO users (email, first_name, last_name) VALUES (%s, 'Ada', 'L')",
                (email,),
            )
    writer = start_writer()
    wait_until(drained(client), what="orphaned entries taken over")
    assert set(rows(clean_users)) == set(wanted)
    samples = writer_metrics(writer)
    assert samples["signup_writer_redeliveries_total"] == 300
    assert samples["signup_writer_duplicates_dropped_total"] == 100
    assert samples["signup_writer_rows_inserted_total"] == 200


def test_writer_killed_mid_batch_three_times(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    wanted = emails("kill", 3000)
    # A steady trickle, so a writer always holds a batch it is still filling or writing.
    feeder = threading.Thread(
        target=lambda: [accept(clean_redis, wanted[i : i + 30]) for i in range(0, 3000, 30)]
    )
    env = {"SIGNUP_WRITER_BATCH_SIZE": "100", "SIGNUP_WRITER_MAX_WAIT_MS": "100"}
    writer = start_writer(**env)
    feeder.start()
    try:
        for _ in range(3):
            pid = writer.pid
            assert pid is not None
            wait_until(
                lambda pid=pid: held_by(client, pid) > 0,  # type: ignore[misc]
                what="the writer holds an unacknowledged batch",
            )
            kill(writer)
            writer = start_writer(**env)
    finally:
        feeder.join()
    wait_until(drained(client), what="all entries written and acknowledged")
    assert set(rows(clean_users)) == set(wanted)


def held_by(client: redis.Redis, pid: int) -> int:
    """Entries read but not yet acknowledged by the writer process `pid` (its consumer name
    is host-pid-random)."""
    if not client.exists(STREAM):
        return 0
    try:
        consumers = client.xinfo_consumers(STREAM, _stream.GROUP)
    except redis.ResponseError:  # no group yet
        return 0
    return sum(
        int(c["pending"]) for c in consumers if c["name"].decode().rsplit("-", 2)[1] == str(pid)
    )


def test_sigterm_finishes_the_current_batch_then_exits(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    # A long fill window: the writer holds the 10 entries while it waits for more.
    writer = start_writer(SIGNUP_WRITER_BATCH_SIZE="1000", SIGNUP_WRITER_MAX_WAIT_MS="3000")
    accept(clean_redis, emails("term", 10))
    wait_until(lambda: pending(client) == 10, what="writer read the batch")
    assert writer.process is not None
    writer.process.send_signal(signal.SIGTERM)
    assert writer.process.wait(timeout=30) == 0
    assert len(rows(clean_users)) == 10
    assert pending(client) == 0
    assert backlog(client) == 0


def test_a_lost_read_reply_is_fetched_back_at_once(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    """Redis moved entries to the writer's pending list, but the reply never reached it (here:
    the writer was paused past its socket timeout). It must fetch them back itself, not wait
    for the claim idle time (a minute here) to take them over."""
    writer = start_writer(SIGNUP_WRITER_CLAIM_IDLE_MS="60000")
    assert writer.process is not None
    assert writer.pid is not None
    wait_until(lambda: client.exists(STREAM), what="group created")
    writer.process.send_signal(signal.SIGSTOP)
    try:
        accept(clean_redis, emails("lost", 100))
        # Its blocked read was answered with the first entries the moment they arrived.
        wait_until(lambda: held_by(client, writer.pid or 0) > 0, what="delivered to it")
        # The fault itself: stay paused longer than the writer's reply timeout.
        time.sleep(IDLE_BLOCK_MS / 1000 + _stream.REPLY_TIMEOUT + 0.5)
    finally:
        writer.process.send_signal(signal.SIGCONT)
    wait_until(drained(client), timeout=20, what="written well before the claim idle time")
    assert len(rows(clean_users)) == 100
    assert writer_metrics(writer)['signup_writer_errors_total{stage="read"}'] >= 1


def test_several_writers_never_insert_a_row_twice(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    wanted = emails("many", 3000)
    writers = [start_writer(SIGNUP_WRITER_BATCH_SIZE="200") for _ in range(3)]
    accept(clean_redis, wanted)
    wait_until(drained(client), what="drained by three writers")
    assert set(rows(clean_users)) == set(wanted)
    samples = [writer_metrics(w) for w in writers]
    assert sum(s["signup_writer_rows_inserted_total"] for s in samples) == 3000
    assert sum(s["signup_writer_duplicates_dropped_total"] for s in samples) == 0


def test_redis_killed_and_restarted(
    start_writer: StartWriter,
    redis_server: RedisServer,
    client: redis.Redis,
    clean_redis: str,
    clean_users: str,
) -> None:
    start_writer()
    before, after = emails("before", 500), emails("after", 500)
    accept(clean_redis, before)
    pid = redis_server.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    redis_server.process.stop(expected_returncode=-signal.SIGKILL)
    redis_server.process.start()
    accept(clean_redis, after)
    wait_until(drained(client), what="drained after the restart")
    assert set(rows(clean_users)) == set(before + after)


@pytest.fixture
def own_postgres() -> Iterator[tuple[ServerProcess, str]]:
    """A PostgreSQL of this test's own, so stopping it disturbs no other test."""
    with server_folder("writer-test-pg-") as folder:
        cluster = Cluster(folder / "pg", free_port(), settings={"fsync": "off"})
        cluster.init()
        server = cluster.server(folder / "pg.log").start()
        url = cluster.ensure_database("signup", "pw", "signup")
        migrate.apply(url)
        try:
            yield server, url
        finally:
            server.stop()


def test_postgres_down_the_writer_retries_and_acks_nothing_it_did_not_commit(
    start_writer: StartWriter,
    client: redis.Redis,
    clean_redis: str,
    own_postgres: tuple[ServerProcess, str],
) -> None:
    server, url = own_postgres
    writer = start_writer(database_url=url)
    server.stop()
    wanted = emails("outage", 500)
    accept(clean_redis, wanted)  # the API side needs no database
    wait_until(
        lambda: writer_metrics(writer)['signup_writer_errors_total{stage="insert"}'] >= 2,
        what="the writer retried the insert",
    )
    assert backlog(client) == 500  # nothing acknowledged
    server.start()
    wait_until(drained(client), timeout=60, what="drained once PostgreSQL is back")
    assert set(rows(url)) == set(wanted)


def test_lost_redis_data_keeps_one_row_per_email_and_claims_can_be_rebuilt(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    writer = start_writer()
    accept(clean_redis, ["ada@example.com"], first_name="First")
    wait_until(drained(client), what="first signup written")
    client.flushall()  # Redis lost everything: stream, group and claims
    accept(clean_redis, ["ada@example.com"], first_name="Second")  # nothing refuses it now
    wait_until(drained(client), what="second signup handled")
    assert {e: first for e, (first, _) in rows(clean_users).items()} == {"ada@example.com": "First"}
    assert writer_metrics(writer)["signup_writer_duplicates_dropped_total"] == 1

    client.flushall()
    # The single hash of emails of earlier versions: the rebuild replaces it.
    client.hset(_stream.legacy_claims_key(STREAM), "ada@example.com", "recorded")
    rebuilt = subprocess.run(
        [sys.executable, "-m", "signup.writer", "--rebuild-claims"],
        env=child_env(SIGNUP_REDIS_URL=clean_redis, SIGNUP_DATABASE_URL=clean_users),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1 emails marked recorded" in rebuilt.stdout
    assert status(client, "ada@example.com") == "recorded"
    assert not client.exists(_stream.legacy_claims_key(STREAM))
    with pytest.raises(DuplicateEmail):
        accept(clean_redis, ["ada@example.com"])


def test_a_malformed_entry_is_set_aside_not_retried_forever(
    start_writer: StartWriter, client: redis.Redis, clean_redis: str, clean_users: str
) -> None:
    client.xadd(STREAM, {"email": "x@example.com", "accepted_at": "not a time"})
    accept(clean_redis, ["fine@example.com"])
    start_writer()
    wait_until(drained(client), what="both entries handled")
    assert set(rows(clean_users)) == {"fine@example.com"}
    [(_id, fields)] = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(f"{STREAM}:dead"))
    assert fields[b"email"] == b"x@example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIGNUP_REDIS_URL": ""}, "SIGNUP_REDIS_URL is required"),
        ({"SIGNUP_DATABASE_URL": ""}, "SIGNUP_DATABASE_URL is required"),
        ({"SIGNUP_WRITER_BATCH_SIZE": "0"}, "SIGNUP_WRITER_BATCH_SIZE=0 must be at least 1"),
        ({"SIGNUP_WRITER_METRICS_ADDR": "everywhere"}, "SIGNUP_WRITER_METRICS_ADDR"),
    ],
)
def test_bad_settings_stop_the_writer_with_a_clear_message(
    env: dict[str, str], message: str
) -> None:
    base = {"SIGNUP_REDIS_URL": "redis://127.0.0.1:1/0", "SIGNUP_DATABASE_URL": "postgresql://x"}
    result = subprocess.run(
        [sys.executable, "-m", "signup.writer"],
        env=child_env(**{**base, **env}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("name", sorted(_insert.STRATEGIES))
def test_every_insert_strategy_is_idempotent(name: str, clean_users: str) -> None:
    insert = _insert.STRATEGIES[name]
    now = datetime.now(UTC)
    batch = [(f"s{i}@example.com", "Ada", "Lovelace", now) for i in range(5)]

    async def run() -> tuple[list[str], list[str]]:
        async with await psycopg.AsyncConnection.connect(clean_users, autocommit=True) as conn:
            first = await insert(conn, "users", batch[:3])
            return first, await insert(conn, "users", batch)

    first, second = asyncio.run(run())
    assert sorted(first) == [f"s{i}@example.com" for i in range(3)]
    assert sorted(second) == ["s3@example.com", "s4@example.com"]  # only the new rows
    assert set(rows(clean_users)) == {f"s{i}@example.com" for i in range(5)}
