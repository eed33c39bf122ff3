"""The facts of a phase, read from its compose file: the single source for both runtimes.

Services, replica counts, CPU and memory limits, restart policy and environment come from
`phaseN-*/compose.yaml` (and the monitoring file it includes). The native runtime starts what
this module reads, so compose and native cannot drift apart silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PHASES = {
    "phase1": REPO / "phase1-monolith",
    "phase2": REPO / "phase2-replicas",
    "phase3": REPO / "phase3-queue",
    "phase4": REPO / "phase4-cluster",
}
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}
_INTERPOLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class TopologyError(ValueError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    replicas: int = 1
    cpus: float | None = None
    memory: int | None = None
    restart: str = "no"
    environment: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()

    @property
    def restarts(self) -> bool:
        return self.restart in ("always", "unless-stopped", "on-failure")


@dataclass(frozen=True)
class Topology:
    phase: str
    compose_file: Path
    services: Mapping[str, Service]

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    def cpu_budget(self, exclude: tuple[str, ...] = ()) -> float:
        return sum(
            (svc.cpus or 0) * svc.replicas
            for svc in self.services.values()
            if svc.name not in exclude
        )


def parse_memory(value: str | int) -> int:
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmg])?b?\s*", value.lower())
    if not match:
        raise TopologyError(f"memory limit {value!r} is not like 512M")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"])


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op in (":-", "-"):
            missing = current is None or (op == ":-" and current == "")
            return arg if missing else str(current)
        if op in (":?", "?") and not current:
            raise TopologyError(f"{name} must be set: {arg}")
        return current or ""

    return _INTERPOLATE.sub(substitute, value).replace("$$", "$")


def _environment(raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {k: interpolate(v, env) for k, v in pairs}
    return {str(k): interpolate(str(v), env) for k, v in raw.items()}


def _cpus(service: str, value: str) -> float:
    try:
        cpus = float(value)
    except ValueError:
        cpus = -1.0
    # Docker's smallest limit; below it the quota would be under the kernel's 1 ms minimum.
    if not cpus >= 0.01:
        raise TopologyError(f"service {service}: cpus {value!r} is not a CPU count like 0.5")
    return cpus


def _service(name: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> Service:
    deploy = raw.get("deploy") or {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    cpus = limits.get("cpus")
    memory = limits.get("memory")
    depends = raw.get("depends_on") or {}
    replicas = interpolate(str(deploy.get("replicas", 1)), env)
    try:
        replica_count = int(replicas)
    except ValueError:
        raise TopologyError(f"service {name}: replicas {replicas!r} is not an integer") from None
    if replica_count < 1:
        raise TopologyError(f"service {name}: replicas must be at least 1")
    return Service(
        name=name,
        replicas=replica_count,
        cpus=None if cpus is None else _cpus(name, interpolate(str(cpus), env)),
        memory=None if memory is None else parse_memory(interpolate(str(memory), env)),
        restart=str(raw.get("restart", "no")),
        environment=_environment(raw.get("environment"), env),
        depends_on=tuple(depends),
        ports=tuple(str(p) for p in raw.get("ports") or ()),
    )


def load_compose(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose document with its `include:`d files merged in (services and volumes)."""
    env = os.environ if env is None else env
    document: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    services: dict[str, Any] = {}
    for item in document.get("include") or ():
        included = item if isinstance(item, str) else item["path"]
        services.update(load_compose((path.parent / included).resolve(), env)["services"])
    services.update(document.get("services") or {})
    document["services"] = services
    return document


def load(phase: str, env: Mapping[str, str] | None = None) -> Topology:
    if phase not in PHASES:
        raise TopologyError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
    env = dict(os.environ if env is None else env)
    compose_file = PHASES[phase] / "compose.yaml"
    document = load_compose(compose_file, env)
    services = {name: _service(name, raw, env) for name, raw in document["services"].items()}
    return Topology(phase, compose_file, services)
