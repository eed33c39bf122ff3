"""A real PgBouncer before the session's PostgreSQL, for tests of what sits on either side of
it: transaction pooling as phase 2 runs it, no client authentication (the server login is in
the database line), and an admin console for the user `stats`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lab._proc import ServerProcess, free_port
from lab.runtime import executable
from tests.conftest import child_env, server_folder


def ini(database_url: str, port: int, pool_size: int) -> str:
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
            "auth_type = any",
            "stats_users = stats",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            # PgBouncer refuses to run as root; it reads this file first, then drops to it.
            *(["user = postgres"] if os.geteuid() == 0 else []),
            "",
        ]
    )


def reachable(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
    return True


@contextmanager
def pgbouncer(database_url: str, pool_size: int) -> Iterator[tuple[ServerProcess, int]]:
    """PgBouncer on a free port; yields the process and the port. The app's database is
    `signup` on it, the admin console `pgbouncer` (as `stats`)."""
    port = free_port()
    with server_folder("test-pgbouncer-") as folder:
        config = folder / "pgbouncer.ini"
        config.write_text(ini(database_url, port, pool_size))
        process = ServerProcess(
            [executable("pgbouncer", "pgbouncer"), str(config)],
            check=lambda: reachable(f"postgresql://anyone@127.0.0.1:{port}/signup"),
            port=port,
            log_file=folder / "pgbouncer.log",
            env=child_env(),
            stop_signal=signal.SIGINT,  # its safe shutdown
        )
        process.start()
        try:
            yield process, port
        finally:
            if process.process is not None:
                process.stop(expected_returncode=process.exit_code())
