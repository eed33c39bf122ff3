"""Prometheus, Alertmanager and the exporters, from Debian's packages, on loopback.

Prometheus gets the same config template and rule files as the compose stack, rendered with
loopback targets instead of Docker DNS names.
"""

from __future__ import annotations

from lab.runtime import LOOPBACK, ProcSpec, RunContext, executable, http_ok
from lab.topology import REPO, Service

MONITORING = REPO / "monitoring"
# Prometheus job name -> the compose service whose members it scrapes.
JOBS = {
    "signup-server": "app",
    "signup-writer": "writer",
    "postgres": "postgres-exporter",
    "pgbouncer": "pgbouncer-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "alertmanager": "alertmanager",
}


def scrape_targets(ctx: RunContext) -> dict[str, list[str]]:
    targets = {job: ctx.members[svc] for job, svc in JOBS.items() if ctx.members.get(svc)}
    targets["containers"] = [f"{LOOPBACK}:{ctx.ports.containers}"]
    targets["prometheus"] = [f"{LOOPBACK}:{ctx.ports.prometheus}"]
    return targets


def prometheus(ctx: RunContext, service: Service) -> list[ProcSpec]:
    folder = ctx.folder("prometheus")
    config = folder / "prometheus.yml"
    address = f"{LOOPBACK}:{ctx.ports.prometheus}"
    ctx.members[service.name] = [address]

    def render() -> None:
        # Rendered at start, once every component has registered its members.
        ctx.render(
            MONITORING / "prometheus" / "prometheus.yml.j2",
            config,
            targets=scrape_targets(ctx),
            rules_dir=str(MONITORING / "prometheus" / "rules"),
        )

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
    address = f"{LOOPBACK}:{ctx.ports.postgres_exporter}"
    ctx.members[service.name] = [address]
    env = ctx.rewrite(service.environment)
    return [
        ProcSpec(
            name=service.name,
            service=service.name,
            command=[
                executable("prometheus-postgres-exporter", "prometheus-postgres-exporter"),
                f"--web.listen-address={address}",
            ],
            check=lambda: http_ok(f"http://{address}/metrics"),
            port=ctx.ports.postgres_exporter,
            env=ctx.child_env(env),
            cpus=service.cpus,
            memory=service.memory,
            restart=service.restarts,
        )
    ]
