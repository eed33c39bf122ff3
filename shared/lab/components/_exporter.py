"""What every Prometheus exporter of the native runtime has in common."""

from __future__ import annotations

from collections.abc import Callable

from lab.runtime import LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import Service


def exporter(
    ctx: RunContext,
    service: Service,
    port: int,
    command: Callable[[str], list[str]],
    *,
    extra_env: Callable[[str], dict[str, str]] | None = None,
    stop_signal: int = 15,
) -> list[ProcSpec]:
    """One exporter on loopback `port`, ready when it serves /metrics.

    Its compose environment names other services (`db:5432`, `nginx:8081`); an exporter has
    no depends_on on them, so it may be built before they register their native addresses,
    and the environment is rewritten just before it starts instead.
    `command` and `extra_env` receive the exporter's own listen address.
    """
    address = f"{LOOPBACK}:{port}"
    ctx.members[service.name] = [address]
    env = ctx.child_env()

    def resolve() -> None:
        env.update(ctx.rewrite(service.environment))
        if extra_env is not None:
            env.update(extra_env(address))

    return [
        ProcSpec(
            name=service.name,
            service=service.name,
            command=command(address),
            check=lambda: http_ok(f"http://{address}/metrics"),
            port=port,
            env=env,
            cpus=service.cpus,
            memory=service.memory,
            restart=service.restarts,
            prepare=resolve,
            url=f"http://{address}",
            stop_signal=stop_signal,
        )
    ]
