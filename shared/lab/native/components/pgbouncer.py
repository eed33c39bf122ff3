"""The `pgbouncer` and `pgbouncer-exporter` services: Debian's PgBouncer before PostgreSQL.

PgBouncer gets the same template the compose file mounts (rendered by `make render` with
Docker's service names, see lab.native.render), rendered here with loopback addresses. The
credentials come from the compose environment (DB_USER, DB_PASSWORD) in both runtimes: the
compose entrypoint writes them to the auth file at start, and so does `prepare` here. Once this
builder has run, `pgbouncer:6432` in any service's environment (the app's SIGNUP_DATABASE_URL)
is rewritten to the native address.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

from lab.native.components._spec import exporter, phase_template, spec
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext, executable
from lab.topology import Service

DATABASE = "signup"


def template(phase: str) -> Path:
    return phase_template(phase, "pgbouncer/pgbouncer.ini.j2")


def credentials(service: Service) -> tuple[str, str]:
    env = service.environment
    user, password = env.get("DB_USER", ""), env.get("DB_PASSWORD", "")
    if not user or not password:
        raise ValueError(f"service {service.name}: DB_USER and DB_PASSWORD must both be set")
    return user, password


def userlist(user: str, password: str) -> str:
    """PgBouncer's auth file line; a double quote inside a field is written twice."""

    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    return f"{quote(user)} {quote(password)}\n"


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def pgbouncer(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("pgbouncer")
    config, auth_file = folder / "pgbouncer.ini", folder / "userlist.txt"
    address = f"{LOOPBACK}:{ctx.ports.pgbouncer}"
    ctx.addresses[(service.name, CONTAINER_PORTS["pgbouncer"])] = address
    ctx.members[service.name] = [address]
    user, password = credentials(service)

    def prepare() -> None:
        db = ctx.addresses.get(("db", CONTAINER_PORTS["db"]))
        if db is None:
            raise RuntimeError("pgbouncer has no database: the phase starts no `db`")
        db_host, db_port = db.rsplit(":", 1)
        ctx.render(
            template(ctx.phase),
            config,
            listen_addr=LOOPBACK,
            listen_port=ctx.ports.pgbouncer,
            db_host=db_host,
            db_port=int(db_port),
            db_name=DATABASE,
            db_user=user,
            auth_file=str(auth_file),
            # Read as root, then dropped: a restart works even when the run folder sits
            # under a directory `postgres` cannot enter (pytest resets its temp root to 0700).
            os_user="postgres" if os.geteuid() == 0 else None,
        )
        _write_private(auth_file, userlist(user, password))

    def ready() -> bool:
        # Through PgBouncer to PostgreSQL with the app's credentials: listening, auth file,
        # SCRAM both ways and the server login all work, or this fails.
        with psycopg.connect(
            host=LOOPBACK,
            port=ctx.ports.pgbouncer,
            user=user,
            password=password,
            dbname=DATABASE,
            connect_timeout=2,
            prepare_threshold=None,
        ) as conn:
            conn.execute("SELECT 1")
        return True

    return [
        spec(
            ctx,
            service,
            command=[executable("pgbouncer", "pgbouncer"), str(config)],
            check=ready,
            port=ctx.ports.pgbouncer,
            prepare=prepare,
            url=f"postgresql://{user}:***@{address}/{DATABASE}",
            stop_signal=2,  # SIGINT: PgBouncer's safe shutdown (waits for transactions)
        )
    ]


def pgbouncer_exporter(ctx: RunContext, service: Service) -> list[ProcSpec]:
    # PGBOUNCER_EXPORTER_CONNECTION_STRING names `pgbouncer:6432` as in compose.
    # The Debian exporter cannot read PgBouncer 1.18: see lab/native/pgbouncer_exporter.py.
    return exporter(
        ctx,
        service,
        ctx.ports.pgbouncer_exporter,
        lambda address: [
            sys.executable,
            "-m",
            "lab.native.pgbouncer_exporter",
            f"--web.listen-address={address}",
        ],
    )
