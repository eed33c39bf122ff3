"""Phase 2 under failure: a replica SIGKILLed and PgBouncer restarted, each during a load.

One stack for the module; the tests run in file order and each breaks a bit more of it: one
replica is killed (and stays dead), PgBouncer is restarted (and comes back), then every
replica is killed.
Every load is bounded in count and time and every client has a timeout, so "never hangs"
is checked by asserting that no client ever ran into its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from lab.native.stack import Stack
from tests.phase2._phase2 import (
    CLIENT_TIMEOUT,
    Load,
    Outcome,
    emails,
    is_json_error,
    phase2,
    rows_by_email,
    sample,
)

pytestmark = pytest.mark.e2e
CONCURRENCY = 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with phase2(tmp_path_factory.mktemp("phase2-failures")) as running_stack:
        yield running_stack


def app_processes(stack: Stack) -> dict[str, tuple[int, float]]:
    """Each live replica's master pid and start time: a restart would change either."""
    found = {}
    for entry in stack.entries("app"):
        pid = entry.process.pid if entry.process is not None else None
        if pid is not None:
            found[entry.spec.name] = (pid, psutil.Process(pid).create_time())
    return found


def pooled_connections_at_most(stack: Stack) -> int:
    """Replicas running x gunicorn workers x SIGNUP_POOL_MAX."""
    env = stack.ctx.topology["app"].environment
    running = [e for e in stack.entries("app") if e.process is not None and e.process.running()]
    return len(running) * int(env["GUNICORN_WORKERS"]) * int(env["SIGNUP_POOL_MAX"])


def started_after(outcomes: list[Outcome], moment: float) -> list[Outcome]:
    return [o for o in outcomes if o.started > moment]


def test_replica_sigkilled_during_load(stack: Stack) -> None:
    load = Load(stack.url, count=400, concurrency=CONCURRENCY, deadline_seconds=90, tag="kill")
    load.start()
    load.wait_for(lambda seen: len(seen) >= 100, timeout=30)
    victim = stack.entry("app-2").process
    assert victim is not None
    assert victim.pid is not None
    victim_pid = victim.pid
    victim.kill()  # SIGKILL to the whole replica (master and workers), as `docker kill` does
    killed_at = time.monotonic()
    outcomes = load.join()
    assert not psutil.pid_exists(victim_pid)

    # The only failures are the requests the dead replica had taken (or was being handed
    # on a kept-alive connection) when it died: nginx answers those 502 in JSON and does not
    # replay them elsewhere. Each client has at most one request out, so there are few.
    assert [o for o in outcomes if o.status is None] == []
    failures = [o for o in outcomes if o.status != 201]
    assert all(o.status == 502 and is_json_error(o) for o in failures), failures
    assert len(failures) <= 2 * CONCURRENCY
    after = started_after(outcomes, killed_at)
    assert sum(o.status == 201 for o in after) >= len(after) - 2 * CONCURRENCY > 0

    # New requests all succeed through the two replicas left.
    later = Load(stack.url, count=60, concurrency=3, deadline_seconds=60, tag="later").start()
    assert [o.status for o in later.join()] == [201] * 60

    # A 502 after the request reached the replica is ambiguous: the row may have been
    # committed just before the replica died. The client resolves it by sending the same
    # signup again: 201 (it was not stored) or 409 (it was). Nothing else is possible.
    resent = {
        o.email: httpx.post(
            f"{stack.url}/signup",
            json={"email": o.email, "first_name": "Load", "last_name": "Again"},
        ).status_code
        for o in failures
    }
    assert set(resent.values()) <= {201, 409}, resent

    rows = rows_by_email(stack)
    ours = {email: n for email, n in rows.items() if email.startswith("kill-")}
    # Every signup answered 201 is stored, once, and so is every resent one; there is no
    # other row. So rows == 201s, counting a 409 on the resend as the 201 the dead replica
    # could not deliver.
    acknowledged = emails(outcomes, 201) + list(resent)
    assert sorted(ours) == sorted(acknowledged)
    assert set(ours.values()) == {1}


def test_pgbouncer_restart_during_load(stack: Stack) -> None:
    apps_before = app_processes(stack)
    assert apps_before, "no replica left to test with"
    exporter = f"http://127.0.0.1:{stack.ctx.ports.pgbouncer_exporter}/metrics"
    bouncer = stack.entry("pgbouncer").process
    assert bouncer is not None
    load = Load(stack.url, count=5000, concurrency=CONCURRENCY, deadline_seconds=90, tag="pgb")
    load.start()
    try:
        load.wait_for(lambda seen: len(seen) >= 50, timeout=30)
        bouncer.kill()  # SIGKILL: no goodbye to the clients or to PostgreSQL
        killed_at = time.monotonic()
        assert sample(httpx.get(exporter).text, "pgbouncer_up") == 0
        load.wait_for(
            lambda seen: sum(o.status != 201 for o in started_after(seen, killed_at)) >= 5,
            timeout=30,
        )
        bouncer.start()  # the supervisor's handle; returns once PgBouncer serves again
        back_at = time.monotonic()
        load.wait_for(
            lambda seen: sum(o.status == 201 for o in started_after(seen, back_at)) >= 30,
            timeout=60,
        )
    finally:
        load.stop()
    outcomes = load.join()

    # Nothing hung: every request got an answer before the client's timeout ...
    assert [o for o in outcomes if o.status is None] == [], f"timeout is {CLIENT_TIMEOUT} s"
    # ... and every failure was the app's JSON error, never nginx's 502/504 or an HTML page.
    failures = [o for o in outcomes if o.status != 201]
    assert failures, "the outage was not seen by any request"
    assert {o.status for o in failures} <= {500, 503}, {o.status for o in failures}
    assert all(is_json_error(o) for o in failures)
    # Recovered by itself, with the same app processes. Connections the apps' pools held
    # idle through the restart are found closed before use and replaced (that alone is
    # tested in tests/signup/test_postgres_store.py); what can still fail after the restart
    # is a request that waited past the pool timeout while the pools reconnect, which is
    # bounded by how many connections the pools can hold.
    after = started_after(outcomes, back_at)
    assert sum(o.status == 201 for o in after) >= 30
    assert sum(o.status != 201 for o in after) <= pooled_connections_at_most(stack)
    assert app_processes(stack) == apps_before
    assert sample(httpx.get(exporter).text, "pgbouncer_up") == 1
    rows = rows_by_email(stack)
    assert all(rows.get(email) == 1 for email in emails(outcomes, 201))


def test_all_replicas_down_is_a_json_502(stack: Stack) -> None:
    for entry in stack.entries("app"):
        if entry.process is not None and entry.process.running():
            entry.process.kill()
    for response in (
        httpx.get(f"{stack.url}/"),
        httpx.post(f"{stack.url}/signup", json={"email": "late@example.com"}),
    ):
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "no app replica answered"}
