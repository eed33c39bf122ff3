"""The `writer` service: `python -m signup.writer`, one process per replica; and `claims`,
the same program once with --rebuild-claims before the apps start.

Each replica serves its metrics on a loopback port of its own (a container serves them on
SIGNUP_WRITER_METRICS_PORT on all its interfaces); Prometheus scrapes every member. The
compose restart policy applies as in Docker, so a writer killed with SIGKILL comes back and
its unacknowledged entries are taken over after SIGNUP_WRITER_CLAIM_IDLE_MS.
"""

from __future__ import annotations

import signal
import sys

from lab.native.components._spec import replicas, spec
from lab.runtime import LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import Service


def writer(ctx: RunContext, service: Service) -> list[ProcSpec]:
    specs = []
    for name, port in replicas(ctx, service, lambda i: ctx.ports.replica("writer", i)):
        metrics = f"http://{LOOPBACK}:{port}/metrics"
        env = ctx.rewrite(service.environment)
        env.update(SIGNUP_WRITER_METRICS_PORT=str(port), SIGNUP_WRITER_METRICS_ADDR=LOOPBACK)
        specs.append(
            spec(
                ctx,
                service,
                name=name,
                command=[sys.executable, "-m", "signup.writer"],
                check=lambda metrics=metrics: http_ok(metrics),  # type: ignore[misc]
                port=port,
                env=env,
                url=metrics,
                # SIGTERM lets the writer finish its batch before it exits.
                stop_signal=signal.SIGTERM,
            )
        )
    return specs


def claims(ctx: RunContext, service: Service) -> list[ProcSpec]:
    """Once, before the apps: every email with a row claimed in Redis (the compose file says
    why)."""
    return [
        spec(
            ctx,
            service,
            command=[sys.executable, "-m", "signup.writer", "--rebuild-claims"],
            check=lambda: True,
            port=None,
            env=ctx.rewrite(service.environment),
            oneshot=True,
        )
    ]
