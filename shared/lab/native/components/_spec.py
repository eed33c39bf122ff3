"""What the native stand-ins have in common: a process spec that takes its limits and restart
policy from the compose service, replicas on ports of their own, HTTP servers and exporters,
and the config templates phase 2 and 3 share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lab.runtime import LOOPBACK, ProcSpec, RunContext, http_ok
from lab.topology import PHASES, Service


def spec(
    ctx: RunContext,
    service: Service,
    *,
    command: list[str],
    check: Callable[[], bool],
    port: int | None,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    **more: Any,
) -> ProcSpec:
    """One process of `service`, under its compose CPU and memory limits and restart policy;
    `env` is added to the child environment."""
    return ProcSpec(
        name=name or service.name,
        service=service.name,
        command=command,
        check=check,
        port=port,
        env=ctx.child_env(env),
        cpus=service.cpus,
        memory=service.memory,
        restart=service.restarts,
        **more,
    )


def replicas(
    ctx: RunContext, service: Service, port_of: Callable[[int], int]
) -> list[tuple[str, int]]:
    """(name, loopback port) of each replica, registered as the service's members (nginx's
    upstream, Prometheus's targets). One replica keeps the service's name, as compose does."""
    members = ctx.members.setdefault(service.name, [])
    found = []
    for index in range(1, service.replicas + 1):
        port = port_of(index)
        members.append(f"{LOOPBACK}:{port}")
        found.append((service.name if service.replicas == 1 else f"{service.name}-{index}", port))
    return found


def served(
    ctx: RunContext,
    service: Service,
    port: int,
    command: Callable[[str], list[str]],
    *,
    ready: str,
    **more: Any,
) -> ProcSpec:
    """The service's one process, serving HTTP on loopback `port`: its only member, ready when
    `ready` (a path) answers 200. `command` receives the listen address."""
    address = f"{LOOPBACK}:{port}"
    ctx.members[service.name] = [address]
    return spec(
        ctx,
        service,
        command=command(address),
        check=lambda: http_ok(f"http://{address}{ready}"),
        port=port,
        url=f"http://{address}",
        **more,
    )


def exporter(
    ctx: RunContext,
    service: Service,
    port: int,
    command: Callable[[str], list[str]],
    *,
    extra_env: Callable[[str], dict[str, str]] | None = None,
) -> list[ProcSpec]:
    """One exporter on loopback `port`, ready when it serves /metrics.

    Its compose environment names other services (`db:5432`, `nginx:8081`); an exporter has
    no depends_on on them, so it may be built before they register their native addresses,
    and the environment is rewritten just before it starts instead.
    `command` and `extra_env` receive the exporter's own listen address.
    """
    process = served(ctx, service, port, command, ready="/metrics")

    def resolve() -> None:
        process.env.update(ctx.rewrite(service.environment))
        if extra_env is not None:
            process.env.update(extra_env(f"{LOOPBACK}:{port}"))

    process.prepare = resolve
    return [process]


def phase_template(phase: str, relative: str) -> Path:
    """The phase's own copy of a config template if it has one (phase 3 may), else phase 2's."""
    own = PHASES[phase] / relative
    return own if own.exists() else PHASES["phase2"] / relative
