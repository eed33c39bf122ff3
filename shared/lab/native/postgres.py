"""A throwaway PostgreSQL cluster from the operating system's packages.

Used by the native runtime (the `db` service) and by the tests, so both start PostgreSQL the
same way: initdb into a folder, postgres in the foreground on 127.0.0.1, TCP only (no Unix
socket, so no path-length limit), scram-sha-256 for every connection. As root the server runs
as the `postgres` account, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from lab._proc import ServerProcess


class PostgresNotFound(RuntimeError):
    pass


def bindir() -> Path:
    """Where postgres and initdb are: LAB_PG_BINDIR, Debian's newest version, or PATH."""
    if env := os.environ.get("LAB_PG_BINDIR"):
        return Path(env)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    if which := shutil.which("postgres"):
        return Path(which).resolve().parent
    raise PostgresNotFound(
        "PostgreSQL server binaries not found: install the postgresql package "
        "(apt-get install postgresql) or set LAB_PG_BINDIR"
    )


def _run_as() -> list[str]:
    """The prefix that drops root to the postgres account (setpriv execs, so no extra parent)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _chown_for_server(path: Path) -> None:
    if os.geteuid() != 0:
        return
    account = pwd.getpwnam("postgres")
    os.chown(path, account.pw_uid, account.pw_gid)
    # The server must be able to reach its folder through every parent (mkdtemp makes 0700).
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
        if parent == Path("/"):
            break


@dataclass
class Cluster:
    # SIGINT is PostgreSQL's "fast" shutdown. SIGTERM ("smart") waits for every client to
    # disconnect, and a connection pool never does.
    STOP_SIGNAL: ClassVar[int] = signal.SIGINT

    datadir: Path
    port: int
    superuser: str = "postgres"
    superuser_password: str = "postgres"  # noqa: S105 - a throwaway cluster on loopback
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def admin_url(self) -> str:
        return self.url(self.superuser, self.superuser_password, "postgres")

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb once; a second call on the same folder does nothing."""
        if self.initialised():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        _chown_for_server(self.datadir)
        pwfile = self.datadir.parent / f".{self.datadir.name}.pw"
        pwfile.write_text(self.superuser_password + "\n")
        _chown_for_server(pwfile)
        try:
            subprocess.run(
                [
                    *_run_as(),
                    str(bindir() / "initdb"),
                    "--pgdata",
                    str(self.datadir),
                    f"--username={self.superuser}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr.strip()}") from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
            "logging_collector": "off",
            **self.settings,
        }
        args = [f"--{key}={value}" for key, value in options.items()]
        return [*_run_as(), str(bindir() / "postgres"), "-D", str(self.datadir), *args]

    def server(self, log_file: Path) -> ServerProcess:
        """The server as a process to start and stop (tests; the runtime uses ProcSpec)."""
        return ServerProcess(
            self.command(),
            check=self.ready,
            port=self.port,
            log_file=log_file,
            env={},
            stop_signal=self.STOP_SIGNAL,
        )

    def ready(self) -> bool:
        with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def ensure_database(self, user: str, password: str, database: str) -> str:
        """Create the role and its database if missing; return the app's URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if role else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                )
            )
            _create_missing(conn, database, owner=user)
        return self.url(user, password, database)

    def ensure_owned_database(self, database: str) -> None:
        """Create a database owned by the superuser, as the official image does at first start."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            _create_missing(conn, database)

    def drop_database(self, database: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


def _create_missing(conn: psycopg.Connection[Any], database: str, owner: str | None = None) -> None:
    """PostgreSQL's CREATE DATABASE has no IF NOT EXISTS."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
        return
    owned = sql.SQL(" OWNER {}").format(sql.Identifier(owner)) if owner else sql.SQL("")
    conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(database), owned))
