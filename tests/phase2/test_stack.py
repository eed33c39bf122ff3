"""Phase 2 running for real: nginx, three gunicorn replicas, PgBouncer, PostgreSQL, exporters.

One stack for the module (started natively by lab.native.stack, on free ports, in a temp folder);
none of these tests breaks anything, so they share it.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from lab.native.components import nginx
from lab.native.stack import Stack
from signup.config import Settings
from tests._contract import check_contract
from tests.phase2._phase2 import (
    Load,
    admin_console,
    emails,
    pgbouncer_ini,
    phase2,
    rows_by_email,
    sample,
)

pytestmark = pytest.mark.e2e

# PostgreSQL backends of the apps' database, whoever opened them (only PgBouncer does here:
# the migration has finished and the postgres exporter is not started).
SERVER_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND datname = 'signup' AND pid <> pg_backend_pid()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with phase2(tmp_path_factory.mktemp("phase2")) as running_stack:
        yield running_stack


def created_per_replica(stack: Stack) -> dict[str, float]:
    """signup_requests_total{status_code="201"} of each replica, scraped from the replica."""
    return {
        entry.spec.name: sample(
            httpx.get(f"{entry.spec.url}/metrics").text, "signup_requests_total", status_code="201"
        )
        for entry in stack.entries("app")
    }


def test_the_contract_through_nginx(stack: Stack) -> None:
    check_contract(stack.url, created=201)


def test_signups_through_nginx_land_on_every_replica(stack: Stack) -> None:
    before = created_per_replica(stack)
    assert len(before) == 3  # REPLICAS defaults to 3

    outcomes = Load(stack.url, count=300, concurrency=6, deadline_seconds=90, tag="spread")
    answers = outcomes.start().join()

    assert len(answers) == 300
    assert [a for a in answers if a.status != 201] == []
    after = created_per_replica(stack)
    grew = {name: after[name] - before[name] for name in after}
    assert all(count > 0 for count in grew.values()), grew
    # Each signup was handled by exactly one replica: none lost, none replayed.
    assert sum(grew.values()) == 300, grew
    rows = rows_by_email(stack)
    assert all(rows.get(email) == 1 for email in emails(answers, 201))


def test_postgres_never_sees_more_than_the_pool(stack: Stack) -> None:
    settings = pgbouncer_ini(stack)
    allowed = int(settings["default_pool_size"]) + int(settings["reserve_pool_size"])
    servers: list[int] = []
    clients: list[int] = []

    load = Load(stack.url, count=1200, concurrency=32, deadline_seconds=90, tag="burst").start()
    with psycopg.connect(stack.database_url(), autocommit=True) as pg, admin_console(stack) as pb:
        while load.running():
            row = pg.execute(SERVER_CONNECTIONS).fetchone()
            assert row is not None
            servers.append(int(str(row[0])))
            cursor = pb.execute("SHOW POOLS")
            names = [column.name for column in cursor.description or ()]
            for values in cursor.fetchall():
                pool = dict(zip(names, values, strict=True))
                if pool["database"] == "signup":
                    clients.append(int(str(pool["cl_active"])) + int(str(pool["cl_waiting"])))
            time.sleep(0.01)  # a sampling period, not a wait for readiness
    answers = load.join()

    assert len(servers) >= 10, "too few samples to say anything"
    # The apps held more connections to PgBouncer than PgBouncer may open to PostgreSQL ...
    assert max(clients) > allowed, (max(clients), allowed)
    # ... and PostgreSQL never saw more than the pool, yet did see it used.
    assert 1 <= max(servers) <= allowed, (max(servers), allowed)
    # The burst waited in PgBouncer's queue instead of failing.
    assert [a for a in answers if a.status != 201] == []


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/metrics/",
        "//metrics",
        "/%6Detrics",
        "/./metrics",
        "/x/../metrics",
        "/metrics?x=1",
    ],
)
def test_replica_metrics_are_not_reachable_through_nginx(stack: Stack, path: str) -> None:
    # http.client sends the path exactly as written (httpx would normalise it first).
    conn = http.client.HTTPConnection("127.0.0.1", stack.ctx.ports.http, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 404
    assert response.getheader("Content-Type") == "application/json"
    assert body == '{"error":"not found"}'


def test_bodies_over_the_app_limit_get_nginx_json_413(stack: Stack) -> None:
    limit = nginx.max_body_bytes(stack.ctx.topology["app"])
    assert limit == Settings().max_body_bytes  # the app's own default: nothing overrides it

    def body(size: int) -> bytes:
        head, tail = b'{"email":"big@example.com","first_name":"', b'","last_name":"x"}'
        return head + b"a" * (size - len(head) - len(tail)) + tail

    headers = {"Content-Type": "application/json"}
    too_big = httpx.post(f"{stack.url}/signup", content=body(limit + 1), headers=headers)
    assert too_big.status_code == 413
    assert too_big.json() == {"error": f"request body larger than {limit} bytes"}
    # The app refuses the same body with the same answer: nginx only refuses it earlier.
    replica = stack.entries("app")[0].spec.url
    direct = httpx.post(f"{replica}/signup", content=body(limit + 1), headers=headers)
    assert (direct.status_code, direct.json()) == (413, too_big.json())

    def chunks() -> Iterator[bytes]:  # no Content-Length: nginx counts as it reads
        data = body(limit + 1)
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    chunked = httpx.post(f"{stack.url}/signup", content=chunks(), headers=headers)
    assert (chunked.status_code, chunked.json()) == (413, too_big.json())

    # Exactly at the limit nginx passes it on, and the app judges the content.
    at_limit = httpx.post(f"{stack.url}/signup", content=body(limit), headers=headers)
    assert at_limit.status_code == 400
    assert at_limit.json() == {"error": "first name must be less than 100 characters"}


def test_exporters_read_nginx_and_pgbouncer(stack: Stack) -> None:
    httpx.get(f"{stack.url}/")  # at least one request through nginx
    ports = stack.ctx.ports
    nginx_text = httpx.get(f"http://127.0.0.1:{ports.nginx_exporter}/metrics").text
    assert sample(nginx_text, "nginx_up") == 1
    assert sample(nginx_text, "nginx_http_requests_total") >= 1

    settings = pgbouncer_ini(stack)
    text = httpx.get(f"http://127.0.0.1:{ports.pgbouncer_exporter}/metrics").text
    assert sample(text, "pgbouncer_up") == 1
    pool_size = sample(text, "pgbouncer_databases_pool_size", name="signup")
    assert pool_size == int(settings["default_pool_size"])
    max_clients = sample(text, "pgbouncer_config_max_client_connections")
    assert max_clients == int(settings["max_client_conn"])
    # The apps' pools keep SIGNUP_POOL_MIN connections each: PgBouncer sees them as clients.
    assert sample(text, "pgbouncer_pools_client_active_connections", database="signup") >= 1
    assert sample(text, "pgbouncer_stats_sql_transactions_pooled_total", database="signup") > 0


def test_nginx_runs_from_the_run_folder(stack: Stack) -> None:
    folder: Path = stack.ctx.run_dir / "nginx"
    config = (folder / "nginx.conf").read_text()
    pid = int((folder / "nginx.pid").read_text())
    assert pid == stack.entry("nginx").process.pid  # type: ignore[union-attr]
    for member in stack.ctx.members["app"]:
        assert f"server {member} " in config
    assert f"listen 127.0.0.1:{stack.ctx.ports.http};" in config
