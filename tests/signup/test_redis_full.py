"""Phase 3 with Redis full: a real Redis whose `maxmemory` is set just above what it holds,
the real app (in-process) and a real writer process.

While Redis refuses writes every new signup is a 503 with Retry-After (never a 500), a
duplicate is still a 409 and the status still answers; the writer still drains what was
accepted, and deleting it frees the memory, after which signups are accepted again without
restarting anything.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from lab._proc import ServerProcess, free_port
from lab.runtime import http_ok
from signup import _stream
from signup.app import create_app
from signup.config import Settings
from tests._probe import wait_until
from tests.conftest import child_env

STREAM = "signups"
# Room for about two thousand signups above what the empty Redis uses. Long names make the
# stream, which the writer empties, most of what they fill: what the writer frees is then
# far more than the few kilobytes Redis's own accounting moves by.
HEADROOM = 1024 * 1024
NAME = "N" * 99
MOST = 50_000  # a bound on the fill: Redis must be full long before this many


def body(email: str) -> dict[str, str]:
    return {"email": email, "first_name": NAME, "last_name": NAME}


def queue_full_errors() -> float:
    value = REGISTRY.get_sample_value("signup_errors_total", {"error_type": "queue_full"})
    return value or 0.0


@pytest.fixture
def client(clean_redis: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(clean_redis) as connection:
        configured = connection.config_get("maxmemory")["maxmemory"]
        used = int(connection.info("memory")["used_memory"])
        connection.config_set("maxmemory", str(used + HEADROOM))
        try:
            yield connection
        finally:
            connection.config_set("maxmemory", configured)


@pytest.fixture
def app(clean_redis: str) -> Iterator[TestClient]:
    settings = Settings(store="queue", redis_url=clean_redis, pool_max=4, max_backlog=MOST)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def writer(tmp_path: Path, clean_redis: str, clean_users: str) -> Iterator[ServerProcess]:
    """A writer, not started: the test starts it once Redis is full."""
    port = free_port()
    process = ServerProcess(
        [sys.executable, "-m", "signup.writer"],
        check=lambda: http_ok(f"http://127.0.0.1:{port}/metrics"),
        port=port,
        log_file=tmp_path / "writer.log",
        env=child_env(
            SIGNUP_REDIS_URL=clean_redis,
            SIGNUP_DATABASE_URL=clean_users,
            SIGNUP_WRITER_METRICS_PORT=str(port),
            SIGNUP_WRITER_METRICS_ADDR="127.0.0.1",
        ),
        timeout=30,
    )
    try:
        yield process
    finally:
        if process.process is not None:
            process.stop()


def test_full_redis_is_a_503_loses_nothing_and_recovers_by_itself(
    client: redis.Redis, app: TestClient, writer: ServerProcess, clean_users: str
) -> None:
    errors_before = queue_full_errors()
    accepted: list[str] = []
    refused = None
    for i in range(MOST):
        response = app.post("/signup", json=body(f"fill{i}@example.com"))
        if response.status_code == 503:
            refused = response
            break
        assert response.status_code == 202, response.text
        accepted.append(f"fill{i}@example.com")
    assert refused is not None, f"Redis still had room after {MOST} signups"
    assert accepted, "Redis was full before the first signup"
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "signups are paused, retry later"}
    assert queue_full_errors() == errors_before + 1
    assert client.xlen(STREAM) == len(accepted)

    # Full, Redis still answers reads: the duplicate check and the status work.
    duplicate = app.post("/signup", json=body(accepted[0].upper()))
    assert (duplicate.status_code, duplicate.json()) == (409, {"error": "email already exists"})
    status = app.get("/signup/status", params={"email": accepted[-1]})
    assert status.json() == {"email": accepted[-1], "status": "pending"}
    assert app.post("/signup", json=body("late@example.com")).status_code == 503

    # The writer starts on the full Redis, writes every accepted signup once, and its
    # deletions make room.
    writer.start()
    wait_until(lambda: client.xlen(STREAM) == 0, what="the writer drained the full stream")
    with psycopg.connect(clean_users) as conn:
        rows = conn.execute("SELECT email, count(*) FROM users GROUP BY email").fetchall()
    assert dict(rows) == dict.fromkeys(accepted, 1)
    claim = client.hget(*_stream.claim_slot(STREAM, accepted[-1]))
    assert _stream.status_of(claim) == "recorded"

    retried = app.post("/signup", json=body("late@example.com"))
    assert retried.status_code == 202, retried.text
