"""Phases 1 and 2's store against the session's real PostgreSQL, directly (phase 1) and through
a real PgBouncer (transaction pooling, as phase 2 runs it): what the app's pool does when
PgBouncer restarts under it, and when the database stalls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from prometheus_client import REGISTRY

from lab._proc import ServerProcess
from signup.config import Settings
from signup.stores import Overloaded, StoreUnavailable
from signup.stores.postgres import PostgresStore
from signup.validation import SignupRequest
from tests._pgbouncer import pgbouncer

POOL = 4


@pytest.fixture
def bouncer(clean_users: str) -> Iterator[tuple[ServerProcess, str]]:
    with pgbouncer(clean_users, POOL) as (process, port):
        yield process, f"postgresql://anyone@127.0.0.1:{port}/signup"


def store_for(url: str, wait_target_ms: int = 50, wait_interval_ms: int = 1000) -> PostgresStore:
    return PostgresStore(
        Settings(
            store="postgres",
            database_url=url,
            pool_min=POOL,
            pool_max=POOL,
            prepare_threshold=None,  # transaction pooling keeps no prepared statements
            pool_wait_target_ms=wait_target_ms,
            pool_wait_interval_ms=wait_interval_ms,
        )
    )


def signup(email: str) -> SignupRequest:
    return SignupRequest(email=email, first_name="Ada", last_name="Lovelace")


def emails_stored(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM users").fetchall()}


@pytest.mark.parametrize("how", ["safe shutdown", "SIGKILL"])
def test_no_signup_fails_on_a_connection_pgbouncer_closed_while_it_was_idle(
    how: str, bouncer: tuple[ServerProcess, str], clean_users: str
) -> None:
    process, url = bouncer
    store = store_for(url)

    async def run() -> list[object]:
        await store.open()
        try:
            await store._pool.wait(timeout=10)  # every pooled connection is open and idle
            if how == "SIGKILL":
                process.kill()
            else:
                process.stop()
            process.start()
            outcomes: list[object] = []
            for i in range(2 * POOL):  # one after another: each takes an idle connection
                try:
                    outcomes.append(await store.create(signup(f"after{i}@example.com")))
                except StoreUnavailable as exc:
                    outcomes.append(exc)
            return outcomes
        finally:
            await store.close()

    outcomes = asyncio.run(run())
    assert [o for o in outcomes if not isinstance(o, dict)] == []
    assert emails_stored(clean_users) == {f"after{i}@example.com" for i in range(2 * POOL)}


def test_an_insert_whose_answer_was_lost_is_not_sent_again(
    bouncer: tuple[ServerProcess, str], clean_users: str
) -> None:
    """The INSERT reached PostgreSQL and its connection died before the answer came back. It
    may have committed (here it did not, but the app cannot know), so sending it again could
    turn a stored signup into a 409: the answer is a 500, and the client decides."""
    _process, url = bouncer
    store = store_for(url)

    async def run() -> list[object]:
        await store.open()
        try:
            with psycopg.connect(clean_users) as blocker:
                blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                insert = asyncio.create_task(store.create(signup("lost@example.com")))
                backend = await until(clean_users, WAITING_INSERT)
                with psycopg.connect(clean_users, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
                await until(clean_users, f"SELECT 1 WHERE {backend} NOT IN ({BACKENDS})")
                blocker.rollback()
            # Had the store sent the INSERT again, it would now succeed: the lock is gone.
            return list(await asyncio.gather(insert, return_exceptions=True))
        finally:
            await store.close()

    [outcome] = asyncio.run(run())
    assert isinstance(outcome, StoreUnavailable)
    assert emails_stored(clean_users) == set()


@pytest.fixture(params=["direct", "pgbouncer"])
def entry(request: pytest.FixtureRequest, clean_users: str) -> Iterator[str]:
    """Where the app's pool connects: PostgreSQL itself (phase 1) or PgBouncer (phase 2)."""
    if request.param == "direct":
        yield clean_users
        return
    with pgbouncer(clean_users, POOL) as (_process, port):
        yield f"postgresql://anyone@127.0.0.1:{port}/signup"


def test_a_stalled_database_sheds_signups_at_once_and_stops_when_it_ends(
    entry: str, clean_users: str
) -> None:
    """A held lock stalls every INSERT: the pool's connections are stuck, later signups queue
    for one. Once that queue has stood, the next signup is refused before it queues (a 503
    while the database is still stalled, so it cannot have waited for it); when the stall
    ends, every queued signup is served and new ones are accepted again."""
    # A short target and interval (the defaults are 50 and 1,000 ms) so the queue stands soon.
    store = store_for(entry, wait_target_ms=20, wait_interval_ms=50)

    async def run() -> tuple[list[object], Overloaded, list[dict[str, object]]]:
        await store.open()
        try:
            await store._pool.wait(timeout=10)
            with psycopg.connect(clean_users) as blocker:
                blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                queued: list[asyncio.Task[dict[str, object]]] = []
                refused: Overloaded | None = None
                for i in range(500):  # a bound: the queue stands after about 70 ms
                    queued.append(asyncio.create_task(store.create(signup(f"s{i}@example.com"))))
                    done, _ = await asyncio.wait(queued, timeout=0.01)
                    for task in done:  # nothing is served while the lock is held
                        queued.remove(task)
                        error = task.exception()
                        assert isinstance(error, Overloaded), error
                        refused = error
                    if refused is not None:
                        break
                assert refused is not None, "no signup was refused while the database stalled"
                assert store._queue.shedding
                blocker.rollback()  # the stall ends
            served: list[object] = list(await asyncio.gather(*queued, return_exceptions=True))
            store.sample_metrics()  # what the dashboard would read the next second
            after = [await store.create(signup(f"after{i}@example.com")) for i in range(3)]
            return served, refused, after
        finally:
            await store.close()

    shed_before = sample("signup_shed_total", reason="wait_target")
    served, refused, after = asyncio.run(run())
    assert refused.retry_after == 1
    assert sample("signup_shed_total", reason="wait_target") == shed_before + 1
    # Refused only once the oldest had waited the target (20 ms) for an interval (50 ms).
    assert sample("database_pool_oldest_wait_seconds") >= 0.070
    assert sample("database_pool_wait_target_seconds") == 0.020
    assert [s for s in served if not isinstance(s, dict)] == []  # each queued one got its row
    assert not store._queue.shedding
    assert len(after) == 3
    assert len(emails_stored(clean_users)) == len(served) + 3


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


BACKENDS = "SELECT pid FROM pg_stat_activity"
WAITING_INSERT = f"{BACKENDS} WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO users%'"


async def until(database_url: str, query: str) -> int:
    """The first column of the first row `query` returns, once it returns one."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(600):
            row = conn.execute(query.encode()).fetchone()
            if row is not None:
                return int(row[0])
            await asyncio.sleep(0.05)  # between polls of a real condition
    raise AssertionError(f"no row within 30 s: {query}")
