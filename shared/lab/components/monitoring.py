"""Prometheus, Alertmanager and the exporters, from Debian's packages, on loopback.

Prometheus gets the same config template and rule files as the compose stack: rendered here,
at start, with the loopback address of every native process, and by `make render`
(DOCKER_RENDERS below) with Docker DNS names for the committed compose configs.

The native scrape interval is 5 s, like Docker's; a test may shorten it by setting
LAB_SCRAPE_INTERVAL in the prometheus service's environment
(`stack.running(..., environment={"prometheus": {"LAB_SCRAPE_INTERVAL": "1s"}})`).
"""

from __future__ import annotations

import re

from lab.components._exporter import exporter
from lab.render import DockerRender
from lab.runtime import LOOPBACK, ProcSpec, RunContext, executable, http_ok
from lab.topology import REPO, Service

MONITORING = REPO / "monitoring"
TEMPLATE = MONITORING / "prometheus" / "prometheus.yml.j2"
RULES = MONITORING / "prometheus" / "rules"
DEFAULT_SCRAPE_INTERVAL = "5s"

# Prometheus job name -> the compose service whose members it scrapes. The job names are what
# the alert rules and dashboards select on (`up{job="signup-server"}`).
JOBS = {
    "signup-server": "app",
    "signup-writer": "writer",
    "postgres": "postgres-exporter",
    "pgbouncer": "pgbouncer-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "alertmanager": "alertmanager",
    "cadvisor": "cadvisor",
    "prometheus": "prometheus",
}
# Port each service serves its metrics on inside its container (Docker runtime).
CONTAINER_PORTS = {
    "app": 8000,
    "writer": 9101,  # SIGNUP_WRITER_METRICS_PORT's default
    "postgres-exporter": 9187,
    "pgbouncer-exporter": 9127,
    "redis-exporter": 9121,
    "nginx-exporter": 9113,
    "alertmanager": 9093,
    "cadvisor": 8080,
    "prometheus": 9090,
}
# Services that scale (replicas / --scale): found through Docker's DNS, one A record each.
SCALED = ("app", "writer")

# The scraped compose services of each phase's Docker stack. Written out rather than read from
# the phase compose files so a render never depends on a phase folder being complete; a test
# checks it against every phase compose file that exists.
_PHASE1 = ("app", "postgres-exporter", "alertmanager", "cadvisor", "prometheus")
_PHASE2 = (*_PHASE1, "pgbouncer-exporter", "nginx-exporter")
DOCKER_SERVICES = {
    "phase1": _PHASE1,
    "phase2": _PHASE2,
    "phase3": (*_PHASE2, "redis-exporter", "writer"),
}
_INTERVAL = re.compile(r"[1-9][0-9]*(ms|s|m)")


def docker_context(phase: str) -> dict[str, object]:
    """Template context of the committed Docker config of `phase`."""
    services = DOCKER_SERVICES[phase]
    targets: dict[str, list[str]] = {}
    dns: dict[str, dict[str, object]] = {}
    for job, service in JOBS.items():
        if service not in services:
            continue
        port = CONTAINER_PORTS[service]
        if service in SCALED:
            dns[job] = {"name": service, "port": port}
        elif service == "prometheus":
            targets[job] = [f"localhost:{port}"]
        else:
            targets[job] = [f"{service}:{port}"]
    return {
        "phase": phase,
        "scrape_interval": DEFAULT_SCRAPE_INTERVAL,
        # Relative to the config file (generated/), so promtool checks the real rule files.
        "rules_dir": "../rules",
        "alertmanagers": [f"alertmanager:{CONTAINER_PORTS['alertmanager']}"],
        "targets": targets,
        "dns_targets": dns,
    }


DOCKER_RENDERS = [
    DockerRender(
        template=TEMPLATE,
        output=MONITORING / "prometheus" / "generated" / f"prometheus-{phase}.yml",
        context=docker_context(phase),
    )
    for phase in DOCKER_SERVICES
]


def scrape_interval(service: Service) -> str:
    value = service.environment.get("LAB_SCRAPE_INTERVAL", DEFAULT_SCRAPE_INTERVAL)
    if not _INTERVAL.fullmatch(value):
        raise ValueError(f"LAB_SCRAPE_INTERVAL={value!r} is not a duration like 5s or 500ms")
    return value


def scrape_targets(ctx: RunContext) -> dict[str, list[str]]:
    """Native targets: every member the components registered (the supervisor registers its
    cAdvisor-named endpoint as `cadvisor`)."""
    return {job: ctx.members[svc] for job, svc in JOBS.items() if ctx.members.get(svc)}


def native_context(ctx: RunContext, service: Service) -> dict[str, object]:
    return {
        "scrape_interval": scrape_interval(service),
        "rules_dir": str(RULES),
        "alertmanagers": ctx.members.get("alertmanager", []),
        "targets": scrape_targets(ctx),
        "dns_targets": {},
    }


def prometheus(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("prometheus")
    config = folder / "prometheus.yml"
    address = f"{LOOPBACK}:{ctx.ports.prometheus}"
    ctx.members[service.name] = [address]

    scrape_interval(service)  # a bad value fails before anything starts

    def render() -> None:
        # Rendered at start, once every component has registered its members.
        ctx.render(TEMPLATE, config, **native_context(ctx, service))

    return [
        ProcSpec(
            name="prometheus",
            service=service.name,
            command=[
                executable("prometheus", "prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={address}",
                "--web.enable-remote-write-receiver",  # k6 pushes its results here
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=15d",
            ],
            check=lambda: http_ok(f"http://{address}/-/ready"),
            port=ctx.ports.prometheus,
            env=ctx.child_env(),
            cpus=service.cpus,
            memory=service.memory,
            restart=service.restarts,
            prepare=render,
            url=f"http://{address}",
        )
    ]


def alertmanager(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("alertmanager")
    address = f"{LOOPBACK}:{ctx.ports.alertmanager}"
    ctx.members[service.name] = [address]
    return [
        ProcSpec(
            name="alertmanager",
            service=service.name,
            command=[
                executable("prometheus-alertmanager", "prometheus-alertmanager"),
                f"--config.file={MONITORING / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={folder}",
                f"--web.listen-address={address}",
                "--cluster.listen-address=",  # a single instance: no gossip port
                "--log.level=debug",  # logs each alert received and flushed, as in compose
            ],
            check=lambda: http_ok(f"http://{address}/-/ready"),
            port=ctx.ports.alertmanager,
            env=ctx.child_env(),
            cpus=service.cpus,
            memory=service.memory,
            restart=service.restarts,
            url=f"http://{address}",
        )
    ]


def postgres_exporter(ctx: RunContext, service: Service) -> list[ProcSpec]:
    binary = executable("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    return exporter(
        ctx,
        service,
        ctx.ports.postgres_exporter,
        lambda address: [binary, f"--web.listen-address={address}"],
    )
