"""The `app` service: gunicorn with uvicorn workers, one process tree per replica."""

from __future__ import annotations

import sys
from pathlib import Path

from lab.native.components._spec import replicas, spec
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import Service

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def app(ctx: RunContext, service: Service) -> list[ProcSpec]:
    # A service that publishes its port (phase 1) is the public entry itself; replicas behind
    # nginx (phases 2 and 3) each get a port of their own.
    public = bool(service.ports) and service.replicas == 1
    specs = []
    for name, port in replicas(
        ctx, service, lambda i: ctx.ports.http if public else ctx.ports.replica("app", i)
    ):
        base = f"http://{LOOPBACK}:{port}"
        env = ctx.rewrite(service.environment)
        env.update(
            GUNICORN_BIND=f"{LOOPBACK}:{port}",
            PROMETHEUS_MULTIPROC_DIR=str(ctx.run_dir / name / "metrics"),
        )
        specs.append(
            spec(
                ctx,
                service,
                name=name,
                command=[GUNICORN, "-c", "python:signup.gunicorn_conf"],
                check=lambda base=base: http_ok(f"{base}/readyz"),  # type: ignore[misc]
                port=port,
                env=env,
                url=base,
            )
        )
    ctx.addresses[(service.name, CONTAINER_PORTS["app"])] = ctx.members[service.name][0]
    return specs
