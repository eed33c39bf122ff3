"""The `writer` service: `python -m signup.writer`, one process per replica.

Each replica serves its metrics on a loopback port of its own (a container serves them on
SIGNUP_WRITER_METRICS_PORT on all its interfaces); Prometheus scrapes every member. The
compose restart policy applies as in Docker, so a writer killed with SIGKILL comes back and
its unacknowledged entries are taken over after SIGNUP_WRITER_CLAIM_IDLE_MS.
"""

from __future__ import annotations

import signal
import sys

from lab.runtime import LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import Service


def writer(ctx: RunContext, service: Service) -> list[ProcSpec]:
    members = ctx.members.setdefault(service.name, [])
    specs = []
    for index in range(1, service.replicas + 1):
        port = ctx.ports.replica("writer", index)
        name = service.name if service.replicas == 1 else f"{service.name}-{index}"
        address = f"{LOOPBACK}:{port}"
        members.append(address)
        env = ctx.rewrite(service.environment)
        env.update(SIGNUP_WRITER_METRICS_PORT=str(port), SIGNUP_WRITER_METRICS_ADDR=LOOPBACK)
        specs.append(
            ProcSpec(
                name=name,
                service=service.name,
                command=[sys.executable, "-m", "signup.writer"],
                check=lambda address=address: http_ok(f"http://{address}/metrics"),  # type: ignore[misc]
                port=port,
                env=ctx.child_env(env),
                cpus=service.cpus,
                memory=service.memory,
                restart=service.restarts,
                url=f"http://{address}/metrics",
                # SIGTERM lets the writer finish its batch before it exits.
                stop_signal=signal.SIGTERM,
            )
        )
    return specs
