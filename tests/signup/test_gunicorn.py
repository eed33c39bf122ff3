"""The service as it runs for real: gunicorn, two uvicorn workers, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from lab._proc import ServerProcess, free_port, port_in_use
from lab.native.postgres import Cluster
from lab.runtime import http_ok
from signup import migrate
from tests.conftest import VENV_BIN, child_env, server_folder

WORKERS = 2
POOL_MAX = 4


def start_gunicorn(tmp: Path, database_url: str, **extra: str) -> ServerProcess:
    port = free_port()
    env = child_env(
        SIGNUP_DATABASE_URL=database_url,
        SIGNUP_POOL_MIN="1",
        SIGNUP_POOL_MAX=str(POOL_MAX),
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        **extra,
    )
    return serve(tmp, port, env)


def serve(tmp: Path, port: int, env: dict[str, str]) -> ServerProcess:
    """gunicorn as shared/Dockerfile's CMD starts it: its config, nothing on the command line."""
    server = ServerProcess(
        [str(VENV_BIN / "gunicorn"), "-c", "python:signup.gunicorn_conf"],
        check=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
        port=port,
        log_file=tmp / "gunicorn.log",
        env=env,
    )
    return server.start()


def base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}"


def scrape(url: str) -> dict[str, float]:
    samples = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_until(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)


@pytest.fixture
def gunicorn(tmp_path: Path, clean_users: str) -> Iterator[ServerProcess]:
    server = start_gunicorn(tmp_path, clean_users)
    try:
        yield server
    finally:
        server.stop()


async def post_all(url: str, bodies: list[dict[str, str]], concurrency: int) -> list[int]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/signup", json=b) for b in bodies))
    return [r.status_code for r in responses]


def test_metrics_are_summed_over_workers(gunicorn: ServerProcess, tmp_path: Path) -> None:
    valid = [
        {"email": f"u{i}@example.com", "first_name": "U", "last_name": "V"} for i in range(120)
    ]
    invalid = [{"email": "nope", "first_name": "U", "last_name": "V"}] * 30
    duplicate = valid[:20]
    statuses = asyncio.run(post_all(base(gunicorn), valid + invalid, concurrency=32))
    statuses += asyncio.run(post_all(base(gunicorn), duplicate, concurrency=8))
    assert statuses.count(201) == 120
    assert statuses.count(400) == 30
    assert statuses.count(409) == 20

    # Each worker writes its own files; the scrape must add them up.
    pids = {p.stem.rsplit("_", 1)[1] for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert len(pids) == WORKERS

    samples = scrape(base(gunicorn))
    assert samples['signup_requests_total{status_code="201"}'] == 120
    assert samples['signup_requests_total{status_code="400"}'] == 30
    assert samples['signup_requests_total{status_code="409"}'] == 20
    assert samples['signup_request_duration_seconds_count{status_code="201"}'] == 120
    assert samples['signup_errors_total{error_type="validation"}'] == 30
    assert samples['signup_errors_total{error_type="duplicate_email"}'] == 20
    assert samples["signup_duplicate_email_attempts_total"] == 20
    assert samples['database_query_duration_seconds_count{operation="insert_user"}'] == 140
    assert samples["signup_requests_in_flight"] == 0
    # The writer's series belong to the writer process; the app must not export them at 0.
    assert not [name for name in samples if name.startswith(("signup_writer_", "signup_queue_d"))]


def test_metrics_without_the_variable_as_the_image_starts_gunicorn(tmp_path: Path) -> None:
    """shared/Dockerfile's CMD: gunicorn and its config, no PROMETHEUS_MULTIPROC_DIR. The
    config must choose the folder before prometheus_client is imported, or every worker
    counts in its own memory and the scrape, which reads the folder, is empty."""
    port = free_port()
    env = child_env(
        SIGNUP_STORE="none",
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        TMPDIR=str(tmp_path),  # where the config's default folder goes, private to this test
    )
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    server = serve(tmp_path, port, env)
    try:
        body = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        assert asyncio.run(post_all(base(server), [body] * 8, concurrency=8)) == [201] * 8
        samples = scrape(base(server))
    finally:
        server.stop()
    assert samples['signup_requests_total{status_code="201"}'] == 8
    assert list((tmp_path / "signup-metrics").glob("counter_*.db")), "no worker wrote a file"


def test_dead_worker_stops_counting_in_live_gauges(gunicorn: ServerProcess) -> None:
    url = base(gunicorn)
    wait_until(lambda: scrape(url).get("database_connections_max") == WORKERS * POOL_MAX)
    assert gunicorn.process is not None
    master = gunicorn.process.pid
    workers = psutil.Process(master).children()
    assert len(workers) == WORKERS
    os.kill(workers[0].pid, signal.SIGKILL)
    # gunicorn replaces the worker; its pool gauge must replace the dead one's, not add to it.
    old = {w.pid for w in workers}

    def replacement() -> set[int]:
        return {p.pid for p in psutil.Process(master).children()} - old

    wait_until(lambda: bool(replacement()))
    new_pid = replacement().pop()
    mp_dir = Path(gunicorn._envvars["PROMETHEUS_MULTIPROC_DIR"])
    wait_until(lambda: (mp_dir / f"gauge_livesum_{new_pid}.db").exists())
    wait_until(lambda: scrape(url).get("database_connections_max") == WORKERS * POOL_MAX)
    assert scrape(url)["database_connections_max"] == WORKERS * POOL_MAX


def test_concurrent_signups_with_one_email(gunicorn: ServerProcess, clean_users: str) -> None:
    body = {"email": "same@example.com", "first_name": "S", "last_name": "E"}
    statuses = asyncio.run(post_all(base(gunicorn), [body] * 50, concurrency=50))
    assert statuses.count(201) == 1
    assert statuses.count(409) == 49
    with psycopg.connect(clean_users) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


@pytest.fixture
def own_cluster() -> Iterator[tuple[Cluster, Path]]:
    """A PostgreSQL of this test's own, outside pytest's folder (server_folder says why)."""
    with server_folder("gunicorn-test-pg-") as folder:
        yield Cluster(folder / "pg", free_port(), settings={"fsync": "off"}), folder


def test_database_down_then_back(tmp_path: Path, own_cluster: tuple[Cluster, Path]) -> None:
    """A stopped database gives JSON 500/503 quickly; when it returns, so does the service."""
    cluster, folder = own_cluster
    cluster.init()

    def start_db() -> ServerProcess:
        return cluster.server(folder / "pg.log").start()

    db = start_db()
    url_db = cluster.ensure_database("signup", "pw", "signup")
    migrate.apply(url_db)
    app = start_gunicorn(tmp_path, url_db, SIGNUP_POOL_TIMEOUT="1")
    try:
        url = base(app)
        body = {"email": "first@example.com", "first_name": "F", "last_name": "L"}
        assert httpx.post(f"{url}/signup", json=body).status_code == 201
        db.stop()
        for i in range(5):
            during = {"email": f"down{i}@example.com", "first_name": "D", "last_name": "N"}
            response = httpx.post(f"{url}/signup", json=during, timeout=10)
            assert response.status_code in (500, 503)
            assert response.json()["error"]
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503
        db = start_db()
        after = {"email": "after@example.com", "first_name": "A", "last_name": "F"}
        wait_until(lambda: httpx.post(f"{url}/signup", json=after, timeout=10).status_code < 500)
        # A pooled connection from before the restart fails once when next used, then is
        # replaced: readiness comes back by itself, within a bounded time.
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200)
        with psycopg.connect(url_db) as conn:
            emails = {r[0] for r in conn.execute("SELECT email FROM users")}
        assert emails == {"first@example.com", "after@example.com"}
    finally:
        app.stop()
        db.stop()


def test_sigterm_finishes_in_flight_signups(tmp_path: Path, clean_users: str) -> None:
    """SIGTERM stops accepting, lets requests in progress finish, then closes the pool."""
    server = start_gunicorn(tmp_path, clean_users)
    try:
        _drain_on_sigterm(server, clean_users)
    finally:
        server.stop()
    with psycopg.connect(clean_users) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (POOL_MAX,)


def _drain_on_sigterm(server: ServerProcess, clean_users: str) -> None:
    url = base(server)
    # No more than one worker's pool, so all can hold a connection whichever worker takes them.
    bodies = [
        {"email": f"t{i}@example.com", "first_name": "T", "last_name": "M"} for i in range(POOL_MAX)
    ]
    with psycopg.connect(clean_users) as blocker:
        # Hold a lock the INSERTs wait for, so the requests are provably in flight.
        blocker.execute("LOCK TABLE users IN EXCLUSIVE MODE")

        def waiting_inserts() -> int:
            with psycopg.connect(clean_users, autocommit=True) as probe:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO users%'"
                ).fetchone()
            return int(row[0]) if row else 0

        async def scenario() -> list[int]:
            task = asyncio.ensure_future(post_all(url, bodies, concurrency=POOL_MAX))
            deadline = time.monotonic() + 30
            while waiting_inserts() < len(bodies):
                assert time.monotonic() < deadline, "the INSERTs never queued on the lock"
                await asyncio.sleep(0.05)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            # Shutdown has begun once the port refuses new connections...
            deadline = time.monotonic() + 30
            while port_in_use(server.port or 0):
                assert time.monotonic() < deadline, "gunicorn kept accepting after SIGTERM"
                await asyncio.sleep(0.05)
            # ...and the signups already inside are still waiting on the lock, not dropped.
            assert not task.done()
            blocker.commit()  # releases the lock: the drained requests may now finish
            return await task

        statuses = asyncio.run(scenario())
    assert statuses == [201] * len(bodies)
    assert server.process is not None
    assert server.process.wait(timeout=30) == 0


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """One request on an open connection, and its whole answer (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0] + b"\r\n\r\n" + body


def test_an_unexpected_failure_is_the_contracts_500_and_the_connection_stays(
    tmp_path: Path, own_cluster: tuple[Cluster, Path]
) -> None:
    """A database in SQL_ASCII (which the migration refuses, so the table is made by hand)
    makes psycopg return text as bytes, which the answer cannot serialise: an error no store
    maps. The client gets the contract's JSON 500, and the keep-alive connection serves the
    next request: dropped, nginx would answer its next client 502."""
    cluster, folder = own_cluster
    cluster.init()
    db = cluster.server(folder / "pg.log").start()
    try:
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE ascii LOGIN PASSWORD 'pw'")
            conn.execute(
                "CREATE DATABASE ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0 OWNER ascii"
            )
        url = cluster.url("ascii", "pw", "ascii")
        with psycopg.connect(url, autocommit=True) as conn:
            for _, sql in migrate.migrations():
                conn.execute(sql.encode())
        app = start_gunicorn(tmp_path, url)
        try:
            body = b'{"email":"a@example.com","first_name":"A","last_name":"B"}'
            post = (
                b"POST /signup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            with socket.create_connection(("127.0.0.1", app.port or 0), timeout=10) as sock:
                first = exchange(sock, post)
                assert first.startswith(b"HTTP/1.1 500"), first
                assert first.endswith(b'{"error":"failed to create user"}'), first
                second = exchange(sock, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                assert second.startswith(b"HTTP/1.1 200"), second
        finally:
            app.stop()
    finally:
        db.stop()
