"""Run a whole phase natively inside the calling process: for tests and the bench.

`make phaseN` runs the same Supervisor detached; here it lives in a `with` block, on free
ports and in a folder of the caller's, and everything is stopped when the block ends.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab import state
from lab.native._cgroup import period_us
from lab.native.supervisor import Running, Supervisor
from lab.runtime import LOOPBACK, Ports, RunContext
from lab.topology import Topology, load


@dataclass
class Stack:
    ctx: RunContext
    supervisor: Supervisor

    @property
    def url(self) -> str:
        """The public entry: the app in phase 1, nginx in phases 2 and 3."""
        return f"http://{LOOPBACK}:{self.ctx.ports.http}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ctx.ports.prometheus}"

    def entries(self, service: str) -> list[Running]:
        return [e for e in self.supervisor.running if e.spec.service == service]

    def entry(self, name: str) -> Running:
        for e in self.supervisor.running:
            if e.spec.name == name:
                return e
        raise KeyError(name)

    def database_url(self) -> str:
        url = self.ctx.database_url()
        assert url is not None, "a running phase has a database"
        return url


def with_environment(topology: Topology, overrides: Mapping[str, Mapping[str, str]]) -> Topology:
    """The topology with some services' environment variables replaced."""
    services = dict(topology.services)
    for name, extra in overrides.items():
        svc = services[name]
        services[name] = dataclasses.replace(svc, environment={**svc.environment, **extra})
    return dataclasses.replace(topology, services=services)


@contextmanager
def running(
    phase: str,
    run_dir: Path,
    *,
    ports: Ports | None = None,
    variables: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
    skip: tuple[str, ...] = (),
    watch: bool = False,
    weight: int | None = None,
) -> Iterator[Stack]:
    """Start `phase`; `variables` feed compose interpolation (REPLICAS=2, APP_CPUS=0.2) and
    LAB_CPU_PERIOD_US, `environment` overrides service variables ({"app": {"SIGNUP_POOL_MAX":
    "4"}}), `skip` leaves services out (the monitoring stack, for tests that do not need it),
    `weight` reserves the run a share of the machine under contention (cgroup cpu.weight).
    `watch` runs the supervisor's watch loop in a thread, so the compose restart policies apply
    as under `make phaseN` (leave it off to stop and start a service by hand without the loop
    restarting it)."""
    env = {**os.environ, **(variables or {})}
    topology = load(phase, env)
    topology = with_environment(topology, environment or {})
    if skip:
        kept = {n: s for n, s in topology.services.items() if n not in skip}
        topology = dataclasses.replace(topology, services=kept)
    ctx = RunContext(topology, run_dir, ports or Ports.free(), cpu_period_us=period_us(env))
    supervisor = Supervisor(ctx, f"{phase}-{run_dir.name}", weight=weight)
    watcher: threading.Thread | None = None
    try:
        supervisor.start_all()
        if watch:
            watcher = threading.Thread(
                target=supervisor.watch, args=(state.path(run_dir),), daemon=True
            )
            watcher.start()
        yield Stack(ctx, supervisor)
    finally:
        supervisor.request_stop()
        if watcher is not None:
            watcher.join()
        supervisor.stop_all()
