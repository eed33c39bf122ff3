"""Phases 1 and 2's store through a real PgBouncer (transaction pooling, as phase 2 runs it) to
the session's real PostgreSQL: what the app's pool does when PgBouncer restarts under it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lab._proc import ServerProcess, free_port
from lab.runtime import executable
from signup.config import Settings
from signup.stores import StoreUnavailable
from signup.stores.postgres import PostgresStore
from signup.validation import SignupRequest
from tests.conftest import child_env, server_folder

POOL = 4


def pgbouncer_ini(database_url: str, port: int) -> str:
    db = conninfo_to_dict(database_url)
    target = (
        f"host={db['host']} port={db['port']} dbname={db['dbname']} "
        f"user={db['user']} password={db['password']}"
    )
    return "\n".join(
        [
            "[databases]",
            f"signup = {target}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            # No client authentication: the server login is in the database line above.
            "auth_type = any",
            "pool_mode = transaction",
            f"default_pool_size = {POOL}",
            # PgBouncer refuses to run as root; it reads this file first, then drops to it.
            *(["user = postgres"] if os.geteuid() == 0 else []),
            "",
        ]
    )


def reachable(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
    return True


@pytest.fixture
def pgbouncer(clean_users: str) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    url = f"postgresql://anyone@127.0.0.1:{port}/signup"
    with server_folder("store-test-pgbouncer-") as folder:
        ini = Path(folder) / "pgbouncer.ini"
        ini.write_text(pgbouncer_ini(clean_users, port))
        process = ServerProcess(
            [executable("pgbouncer", "pgbouncer"), str(ini)],
            check=lambda: reachable(url),
            port=port,
            log_file=Path(folder) / "pgbouncer.log",
            env=child_env(),
            stop_signal=signal.SIGINT,  # its safe shutdown
        )
        process.start()
        try:
            yield process, url
        finally:
            if process.process is not None:
                process.stop(expected_returncode=process.exit_code())


def store_for(url: str) -> PostgresStore:
    return PostgresStore(
        Settings(
            store="postgres",
            database_url=url,
            pool_min=POOL,
            pool_max=POOL,
            prepare_threshold=None,  # transaction pooling keeps no prepared statements
        )
    )


def signup(email: str) -> SignupRequest:
    return SignupRequest(email=email, first_name="Ada", last_name="Lovelace")


def emails_stored(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM users").fetchall()}


@pytest.mark.parametrize("how", ["safe shutdown", "SIGKILL"])
def test_no_signup_fails_on_a_connection_pgbouncer_closed_while_it_was_idle(
    how: str, pgbouncer: tuple[ServerProcess, str], clean_users: str
) -> None:
    process, url = pgbouncer
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
    pgbouncer: tuple[ServerProcess, str], clean_users: str
) -> None:
    """The INSERT reached PostgreSQL and its connection died before the answer came back. It
    may have committed (here it did not, but the app cannot know), so sending it again could
    turn a stored signup into a 409: the answer is a 500, and the client decides."""
    _process, url = pgbouncer
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
