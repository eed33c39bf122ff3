"""The `db` and `migrate` services: a PostgreSQL cluster in the run folder, then migrations."""

from __future__ import annotations

import sys

from lab.native.components._spec import spec
from lab.native.postgres import Cluster
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext
from lab.topology import Service


def cluster(ctx: RunContext, service: Service) -> Cluster:
    # The official image makes POSTGRES_USER the superuser with POSTGRES_PASSWORD; so do we.
    env = service.environment
    return Cluster(
        ctx.run_dir / "postgres",
        ctx.ports.db,
        superuser=env.get("POSTGRES_USER", "postgres"),
        superuser_password=env.get("POSTGRES_PASSWORD", "postgres"),
    )


def db(ctx: RunContext, service: Service) -> list[ProcSpec]:
    pg = cluster(ctx, service)
    ctx.addresses[(service.name, CONTAINER_PORTS["db"])] = f"{LOOPBACK}:{pg.port}"
    database = service.environment.get("POSTGRES_DB", pg.superuser)
    return [
        spec(
            ctx,
            service,
            command=pg.command(),
            check=pg.ready,
            port=pg.port,
            prepare=pg.init,
            after_start=lambda: pg.ensure_owned_database(database),
            url=f"postgresql://{pg.superuser}:***@{LOOPBACK}:{pg.port}/{database}",
            stop_signal=pg.STOP_SIGNAL,
        )
    ]


def migrate(ctx: RunContext, service: Service) -> list[ProcSpec]:
    return [
        spec(
            ctx,
            service,
            command=[sys.executable, "-m", "signup.migrate"],
            check=lambda: True,
            port=None,
            env=ctx.rewrite(service.environment),
            oneshot=True,
        )
    ]
