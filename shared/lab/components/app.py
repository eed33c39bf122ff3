"""The `app` service: gunicorn with uvicorn workers, one process tree per replica."""

from __future__ import annotations

import sys
from pathlib import Path

from lab.runtime import LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import Service

CONTAINER_PORT = 8000


def app(ctx: RunContext, service: Service) -> list[ProcSpec]:
    # A service that publishes its port (phase 1) is the public entry itself; replicas behind
    # nginx (phases 2 and 3) each get a port of their own.
    public = bool(service.ports) and service.replicas == 1
    specs = []
    members = ctx.members.setdefault(service.name, [])
    for index in range(1, service.replicas + 1):
        port = ctx.ports.http if public else ctx.ports.replica("app", index)
        name = service.name if service.replicas == 1 else f"{service.name}-{index}"
        members.append(f"{LOOPBACK}:{port}")
        env = ctx.rewrite(service.environment)
        env.update(
            GUNICORN_BIND=f"{LOOPBACK}:{port}",
            PROMETHEUS_MULTIPROC_DIR=str(ctx.run_dir / name / "metrics"),
        )
        base = f"http://{LOOPBACK}:{port}"
        specs.append(
            ProcSpec(
                name=name,
                service=service.name,
                command=[
                    str(Path(sys.executable).parent / "gunicorn"),
                    "-c",
                    "python:signup.gunicorn_conf",
                ],
                check=lambda base=base: http_ok(f"{base}/readyz"),  # type: ignore[misc]
                port=port,
                env=ctx.child_env(env),
                cpus=service.cpus,
                memory=service.memory,
                restart=service.restarts,
                url=base,
            )
        )
    ctx.addresses[(service.name, CONTAINER_PORT)] = members[0]
    return specs
