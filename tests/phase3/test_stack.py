"""Phase 3 running for real, whole: nginx, three replicas, Redis, the writer, PgBouncer,
PostgreSQL, exporters and Prometheus. One stack for the module; the tests run in file order
and the last one stops and starts PostgreSQL (the stack has no watch loop, so nothing restarts
behind the test's back)."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import httpx
import psycopg
import pytest

from lab.native import _cgroup
from lab.native.components import SKIPPED
from lab.native.stack import Stack
from lab.topology import load
from tests._contract import check_contract
from tests._probe import wait_until
from tests.phase2._phase2 import Load, emails, rows_by_email
from tests.phase3._phase3 import backlog, drained, phase3, statuses

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    fast_scrape = {"prometheus": {"LAB_SCRAPE_INTERVAL": "1s"}}
    with phase3("phase3", environment=fast_scrape, monitoring=True) as running_stack:
        yield running_stack


def test_native_matches_compose(stack: Stack) -> None:
    topology = load("phase3", {})
    started = Counter(e.spec.service for e in stack.supervisor.running)
    expected = {n: s.replicas for n, s in topology.services.items() if n not in SKIPPED}
    assert dict(started) == expected
    if _cgroup.available() is None:  # cgroups usable here: the kernel holds the limits
        for entry in stack.supervisor.running:
            service = topology[entry.spec.service]
            assert entry.cgroup is not None, f"{entry.spec.name} runs outside a cgroup"
            assert entry.cgroup.limits() == (service.cpus, service.memory), entry.spec.name


def test_the_contract_through_nginx(stack: Stack) -> None:
    check_contract(stack.url, created=202)


def test_signups_through_nginx_become_exactly_one_row_each(stack: Stack) -> None:
    writer = stack.entry("writer").process
    assert writer is not None
    assert writer.process is not None
    # Paused, the writer leaves every signup pending long enough to be seen pending.
    writer.process.send_signal(signal.SIGSTOP)
    try:
        load = Load(stack.url, count=600, concurrency=6, deadline_seconds=60, tag="n").start()
        outcomes = load.join()
        assert statuses(outcomes) == {202: 600}
        accepted = emails(outcomes, 202)
        some = accepted[:20]
        assert {status_of(stack, e) for e in some} == {"pending"}
        assert backlog(stack)[0] == 600
    finally:
        writer.process.send_signal(signal.SIGCONT)
    wait_until(drained(stack), timeout=60, what="backlog drained")
    assert {status_of(stack, e) for e in some} == {"recorded"}
    rows = rows_by_email(stack)
    assert {e: n for e, n in rows.items() if e.startswith("n-")} == dict.fromkeys(accepted, 1)
    # The row's created_at is the accept time the 202 carried.
    told = {o.email: o.body["user"]["created_at"] for o in outcomes if isinstance(o.body, dict)}
    with psycopg.connect(stack.database_url()) as conn:
        stored: dict[str, datetime] = dict(
            conn.execute(
                "SELECT email, created_at FROM users WHERE email = ANY(%s)", (some,)
            ).fetchall()
        )
    assert {e: datetime.fromisoformat(told[e]) for e in some} == stored


def status_of(stack: Stack, email: str) -> str:
    response = httpx.get(f"{stack.url}/signup/status", params={"email": email}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_64_concurrent_signups_with_one_email(stack: Stack) -> None:
    body = {"email": "same-64@example.com", "first_name": "Same", "last_name": "Person"}
    start = threading.Barrier(64)
    codes: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(timeout=15) as client:
            start.wait(timeout=30)
            code = client.post(f"{stack.url}/signup", json=body).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=post) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(codes) == {202: 1, 409: 63}
    wait_until(drained(stack), timeout=30, what="drained")
    assert rows_by_email(stack)["same-64@example.com"] == 1


def test_prometheus_scrapes_the_writer_and_redis(stack: Stack) -> None:
    def value(query: str) -> float | None:
        response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": query})
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    wait_until(lambda: value('up{job="signup-writer"}') == 1, timeout=60, what="writer up")
    wait_until(lambda: value('up{job="redis"}') == 1, timeout=60, what="redis exporter up")
    wait_until(
        lambda: (value('signup_writer_rows_inserted_total{job="signup-writer"}') or 0) >= 601,
        timeout=60,
        what="the writer's rows counted in Prometheus",
    )
    assert value('redis_aof_enabled{job="redis"}') == 1
    assert value('signup_queue_depth{job="signup-writer"}') == 0


def test_postgres_stopped_and_started_during_load(stack: Stack) -> None:
    db = stack.entry("db").process
    assert db is not None
    load = Load(stack.url, count=2000, concurrency=6, deadline_seconds=90, tag="pg").start()
    try:
        load.wait_for(lambda seen: len(seen) >= 100, timeout=30)
        db.stop()
        stopped_at = time.monotonic()
        # The API does not need PostgreSQL: it keeps accepting while the database is down.
        load.wait_for(
            lambda seen: sum(o.status == 202 and o.started > stopped_at for o in seen) >= 300,
            timeout=60,
        )
        assert backlog(stack)[0] > 0  # the writer cannot drain meanwhile
        db.start()
    finally:
        load.stop()
    outcomes = load.join()
    assert statuses(outcomes) == {202: len(outcomes)}
    wait_until(drained(stack), timeout=90, what="backlog drained after PostgreSQL came back")
    rows = {e: n for e, n in rows_by_email(stack).items() if e.startswith("pg-")}
    assert rows == dict.fromkeys(emails(outcomes, 202), 1)
