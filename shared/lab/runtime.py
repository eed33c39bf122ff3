"""What the native runtime knows about one run: its folder, its ports, and how to start things.

A component (lab/native/components/) turns one compose service into ProcSpecs; the supervisor starts
them in dependency order. Compose host names (`db:5432`) become loopback addresses here, in one
place, so the environment of each service is the compose file's with only addresses changed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import jinja2

from lab._proc import free_ports
from lab.topology import REPO, Topology

LOOPBACK = "127.0.0.1"
# Docker's CFS period (100 ms): a service's quota is its `cpus` times this, unless
# LAB_CPU_PERIOD_US sets another (lab.native._cgroup.period_us).
DOCKER_PERIOD_US = 100_000

# The port each compose service listens on inside its container: what other services' compose
# environment names (`db:5432`), what the Docker configs use, and what a native address stands
# in for (RunContext.addresses). Ports below holds the loopback ports natively.
CONTAINER_PORTS = {
    "app": 8000,
    "writer": 9101,  # SIGNUP_WRITER_METRICS_PORT's default
    "db": 5432,
    "pgbouncer": 6432,
    "redis": 6379,
    "nginx": 8080,
    "nginx-status": 8081,  # nginx's stub_status, on its own port, never published
    "postgres-exporter": 9187,
    "pgbouncer-exporter": 9127,
    "redis-exporter": 9121,
    "nginx-exporter": 9113,
    "alertmanager": 9093,
    "cadvisor": 8080,
    "prometheus": 9090,
}


@dataclass
class Ports:
    """Loopback ports of a native run. The two a person opens are the documented ones."""

    http: int = 8080
    prometheus: int = 9090
    alertmanager: int = 9093
    db: int = 15432
    pgbouncer: int = 16432
    redis: int = 16379
    containers: int = 19080
    nginx_status: int = 18090
    postgres_exporter: int = 19187
    pgbouncer_exporter: int = 19127
    redis_exporter: int = 19121
    nginx_exporter: int = 19113
    app_base: int = 18001
    writer_base: int = 19101
    # Phase 4's cluster nodes, where they cannot have hosts of their own (not root).
    redis_node_base: int = 17001
    _replicas: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)
    _free: bool = field(default=False, init=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Ports:
        """Defaults, each overridable as LAB_PORT_<NAME> (LAB_PORT_HTTP=8081); LAB_PORTS=free
        picks every port free (to run a second copy beside another)."""
        env = os.environ if env is None else env
        if env.get("LAB_PORTS") == "free":
            return cls.free()
        values: dict[str, int] = {}
        for item in fields(cls):
            if not item.init:
                continue
            raw = env.get(f"LAB_PORT_{item.name.upper()}")
            if raw is None:
                continue
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ValueError(f"LAB_PORT_{item.name.upper()}={raw!r} is not a port number")
            values[item.name] = int(raw)
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Every port picked free by the kernel: for tests that run a whole phase."""
        names = [f.name for f in fields(cls) if f.init]
        ports = cls(**dict(zip(names, free_ports(len(names)), strict=True)))
        ports._free = True
        return ports

    def replica(self, kind: str, index: int) -> int:
        """Port of replica `index` (1-based) of `kind` ("app", "writer" or "redis-node")."""
        key = (kind, index)
        if key not in self._replicas:
            base = getattr(self, f"{kind.replace('-', '_')}_base")
            if self._free:
                taken = {getattr(self, f.name) for f in fields(self) if f.init}
                (self._replicas[key],) = free_ports(1, taken | set(self._replicas.values()))
            else:
                self._replicas[key] = base + index - 1
        return self._replicas[key]


@dataclass
class ProcSpec:
    """One native process standing in for one compose container (one replica)."""

    name: str
    service: str
    command: list[str]
    check: Callable[[], bool]
    port: int | None
    env: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: int | None = None
    restart: bool = False
    oneshot: bool = False
    timeout: float = 60.0
    url: str | None = None
    prepare: Callable[[], None] | None = None
    after_start: Callable[[], None] | None = None
    stop_signal: int = 15


@dataclass
class RunContext:
    topology: Topology
    run_dir: Path
    ports: Ports
    # Where nginx, PgBouncer and the app reach each other: (service, container port) -> address.
    addresses: dict[tuple[str, int], str] = field(default_factory=dict)
    # Every replica's loopback address by compose service: upstreams and scrape targets.
    members: dict[str, list[str]] = field(default_factory=dict)
    # The CFS period of every service's CPU quota (lab.native._cgroup.period_us).
    cpu_period_us: int = DOCKER_PERIOD_US
    # What a component set up besides processes (phase 4's network namespaces), undone by the
    # supervisor after every process has stopped, last first.
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return self.topology.phase

    def folder(self, name: str) -> Path:
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, name: str) -> Path:
        return self.folder("logs") / f"{name}.log"

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child: ours minus the lab's own knobs, plus the venv on PATH."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SIGNUP_", "PROMETHEUS_MULTIPROC", "GUNICORN_"))
        }
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra or {})
        return env

    def rewrite(self, environment: Mapping[str, str]) -> dict[str, str]:
        """Compose environment with `service:port` replaced by the native loopback address."""

        def address(match: re.Match[str]) -> str:
            key = (match.group(1), int(match.group(2)))
            return self.addresses.get(key, match.group(0))

        pattern = re.compile(r"(?<=[@/])([a-z][a-z0-9_-]*):(\d+)")
        rewritten = {k: pattern.sub(address, v) for k, v in environment.items()}
        if "SIGNUP_REDIS_CLUSTER_NODES" in rewritten:
            rewritten["SIGNUP_REDIS_CLUSTER_NODES"] = self._expand(
                rewritten["SIGNUP_REDIS_CLUSTER_NODES"]
            )
        return rewritten

    def _expand(self, nodes: str) -> str:
        """`service:port` in a list of nodes becomes every member of the service, as Docker's
        DNS answers a scaled service's name with every container's address."""
        found: list[str] = []
        for item in nodes.split(","):
            name, _, port = item.strip().rpartition(":")
            if port.isdigit() and (name, int(port)) in self.addresses:
                found.extend(self.members.get(name) or [self.addresses[(name, int(port))]])
            else:
                found.append(item.strip())
        return ",".join(found)

    def database_url(self) -> str | None:
        """The direct (not pooled) URL of the phase's database, as its migrate service uses
        it; None before the database has a native address."""
        migrate = self.topology.services.get("migrate")
        if migrate is None or ("db", CONTAINER_PORTS["db"]) not in self.addresses:
            return None
        return self.rewrite(migrate.environment).get("SIGNUP_DATABASE_URL")

    def render(self, template: Path, dest: Path, **context: object) -> Path:
        text = render_template(
            template,
            runtime="native",
            phase=self.phase,
            repo=str(REPO),
            run_dir=str(self.run_dir),
            **context,
        )
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        return dest


def render_template(template: Path, **context: object) -> str:
    """A config template, the same way in both runtimes (lab.native.render renders Docker's): a
    variable the context lacks is an error, not an empty string in a config file."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )
    return env.get_template(template.name).render(**context)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Readiness: the URL answers 200 (any other answer or no answer is "not yet")."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return bool(response.status == 200)


def executable(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise FileNotFoundError(f"{name} not found: install the Debian package {package}")
    return found
