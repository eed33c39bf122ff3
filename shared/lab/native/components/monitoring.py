"""Prometheus, Alertmanager and the exporters, from Debian's packages, on loopback.

Prometheus gets the same config template and rule files as the compose stack: rendered here,
at start, with the loopback address of every native process (lab.native.render renders it with
Docker's DNS names for the committed compose configs).

The native scrape interval is 5 s, like Docker's; a test may shorten it by setting
LAB_SCRAPE_INTERVAL in the prometheus service's environment
(`stack.running(..., environment={"prometheus": {"LAB_SCRAPE_INTERVAL": "1s"}})`).
"""

from __future__ import annotations

import re

from lab.native.components._spec import exporter, served
from lab.runtime import ProcSpec, RunContext, executable
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
_INTERVAL = re.compile(r"[1-9][0-9]*(ms|s|m)")


def scrape_interval(service: Service) -> str:
    value = service.environment.get("LAB_SCRAPE_INTERVAL", DEFAULT_SCRAPE_INTERVAL)
    if not _INTERVAL.fullmatch(value):
        raise ValueError(f"LAB_SCRAPE_INTERVAL={value!r} is not a duration like 5s or 500ms")
    return value


def scrape_targets(ctx: RunContext) -> dict[str, list[str]]:
    """Native targets: every member the components registered (the supervisor registers its
    cAdvisor-named endpoint as `cadvisor`). Phase 4's Redis nodes are `redis_nodes`'."""
    targets = {job: ctx.members[svc] for job, svc in JOBS.items() if ctx.members.get(svc)}
    if ctx.members.get("redis-node"):
        targets.pop("redis", None)
    return targets


def redis_nodes(ctx: RunContext) -> dict[str, object] | None:
    """Phase 4: one exporter scrapes every cluster node in turn (its /scrape?target=), so a
    node added later needs no exporter of its own."""
    nodes, exporters = ctx.members.get("redis-node"), ctx.members.get("redis-exporter")
    if not nodes or not exporters:
        return None
    return {"exporter": exporters[0], "targets": nodes}


def native_context(ctx: RunContext, service: Service) -> dict[str, object]:
    return {
        "scrape_interval": scrape_interval(service),
        "rules_dir": str(RULES),
        "alertmanagers": ctx.members.get("alertmanager", []),
        "targets": scrape_targets(ctx),
        "dns_targets": {},
        "redis_nodes": redis_nodes(ctx),
    }


def prometheus(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("prometheus")
    config = folder / "prometheus.yml"
    scrape_interval(service)  # a bad value fails before anything starts

    def render() -> None:
        # At start, once every component has registered its members.
        ctx.render(TEMPLATE, config, **native_context(ctx, service))

    def command(address: str) -> list[str]:
        return [
            executable("prometheus", "prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={address}",
            "--web.enable-remote-write-receiver",  # k6 pushes its results here
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=15d",
        ]

    return [served(ctx, service, ctx.ports.prometheus, command, ready="/-/ready", prepare=render)]


def alertmanager(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("alertmanager")

    def command(address: str) -> list[str]:
        return [
            executable("prometheus-alertmanager", "prometheus-alertmanager"),
            f"--config.file={MONITORING / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={folder}",
            f"--web.listen-address={address}",
            "--cluster.listen-address=",  # a single instance: no gossip port
            "--log.level=debug",  # logs each alert received and flushed, as in compose
        ]

    return [served(ctx, service, ctx.ports.alertmanager, command, ready="/-/ready")]


def postgres_exporter(ctx: RunContext, service: Service) -> list[ProcSpec]:
    binary = executable("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    return exporter(
        ctx,
        service,
        ctx.ports.postgres_exporter,
        lambda address: [binary, f"--web.listen-address={address}"],
    )
