"""`python -m lab.native.render`: render every committed Docker config from its template.

Docker mounts plain files, and the native runtime renders the same Jinja2 templates at start
with loopback addresses. So each config a compose file mounts is rendered here, with Docker's
service names, and committed; `--check` fails when a committed file differs from what its
template renders now (CI runs it through the tests), so template and file cannot drift.

The files are listed in `collect()`: one `DockerRender(template, output, context)` each, the
context being the template variables for Docker (`runtime="docker"` is added; the native
runtime passes `runtime="native"` and loopback addresses instead). The rendered text gets a
first line saying it is generated, in the format's comment marker (`comment`; None for none).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from lab.native.components import monitoring, nginx, pgbouncer
from lab.runtime import CONTAINER_PORTS, render_template
from lab.topology import PHASES, REPO
from signup.config import Settings

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
    "phase4": (*_PHASE2, "redis-exporter", "writer"),
}
# Who may read nginx's stub_status in Docker: the compose network (private ranges) and itself.
NGINX_STATUS_ALLOW = ("127.0.0.1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


@dataclass(frozen=True)
class DockerRender:
    template: Path
    output: Path
    context: Mapping[str, object] = field(default_factory=dict)
    comment: str | None = "#"

    def text(self) -> str:
        body = render_template(self.template, **{**self.context, "runtime": "docker"})
        if self.comment is None:
            return body
        source = _relative(self.template)
        header = f"{self.comment} GENERATED from {source} by `make render`: edit the template."
        return f"{header}\n{body}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def prometheus_context(phase: str) -> dict[str, object]:
    """Template context of the committed Prometheus config of `phase`."""
    services = DOCKER_SERVICES[phase]
    targets: dict[str, list[str]] = {}
    dns: dict[str, dict[str, object]] = {}
    cluster = phase == "phase4"  # the Redis nodes, by DNS, through the one exporter
    for job, service in monitoring.JOBS.items():
        if service not in services or (cluster and service == "redis-exporter"):
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
        "scrape_interval": monitoring.DEFAULT_SCRAPE_INTERVAL,
        # Relative to the config file (generated/), so promtool checks the real rule files.
        "rules_dir": "../rules",
        "alertmanagers": [f"alertmanager:{CONTAINER_PORTS['alertmanager']}"],
        "targets": targets,
        "dns_targets": dns,
        "redis_nodes": {
            "exporter": f"redis-exporter:{CONTAINER_PORTS['redis-exporter']}",
            "dns": {"name": "redis-node", "port": CONTAINER_PORTS["redis"]},
        }
        if cluster
        else None,
    }


def nginx_context(phase: str) -> dict[str, object]:
    return {
        "phase": phase,
        "user": "nginx",
        "pid_file": "/var/run/nginx.pid",
        "temp_dir": None,
        "listen": str(CONTAINER_PORTS["nginx"]),
        "status_listen": str(CONTAINER_PORTS["nginx-status"]),
        "status_allow": list(NGINX_STATUS_ALLOW),
        # Docker's DNS answers `app` with every replica: nginx adds each address as a server.
        "upstream": [f"app:{CONTAINER_PORTS['app']}"],
        "max_body_bytes": Settings().max_body_bytes,
        "read_timeout": nginx.READ_TIMEOUT,
    }


def pgbouncer_context(phase: str) -> dict[str, object]:
    return {
        "phase": phase,
        "listen_addr": "0.0.0.0",
        "listen_port": CONTAINER_PORTS["pgbouncer"],
        "db_host": "db",
        "db_port": CONTAINER_PORTS["db"],
        "db_name": pgbouncer.DATABASE,
        "db_user": "signup",
        "auth_file": "/etc/pgbouncer/userlist.txt",
        "os_user": None,  # the image runs it as `postgres` already
    }


def collect() -> list[DockerRender]:
    """Every committed Docker config: one Prometheus config per phase; the nginx and PgBouncer
    configs of phase 2 (phase 3 mounts the same files)."""
    phase2 = PHASES["phase2"]
    prometheus = monitoring.MONITORING / "prometheus" / "generated"
    return [
        *(
            DockerRender(
                monitoring.TEMPLATE,
                prometheus / f"prometheus-{phase}.yml",
                prometheus_context(phase),
            )
            for phase in DOCKER_SERVICES
        ),
        DockerRender(
            nginx.template("phase2"), phase2 / "nginx" / "nginx.conf", nginx_context("phase2")
        ),
        DockerRender(
            pgbouncer.template("phase2"),
            phase2 / "pgbouncer" / "pgbouncer.ini",
            pgbouncer_context("phase2"),
            comment=";",
        ),
    ]


def stale(renders: Iterable[DockerRender]) -> list[tuple[DockerRender, str]]:
    """Each render whose committed file is missing or differs, with the reason."""
    found = []
    for item in renders:
        if not item.output.exists():
            found.append((item, "missing"))
        elif item.output.read_text() != item.text():
            found.append((item, "differs from its template"))
    return found


def write(renders: Iterable[DockerRender]) -> list[Path]:
    """Render every item; returns the files whose content changed."""
    changed = []
    for item in renders:
        text = item.text()
        if item.output.exists() and item.output.read_text() == text:
            continue
        item.output.parent.mkdir(parents=True, exist_ok=True)
        item.output.write_text(text)
        changed.append(item.output)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.native.render", description="Render the committed Docker configs."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed render is missing or stale",
    )
    args = parser.parse_args(argv)
    try:
        return _check(collect()) if args.check else _write(collect())
    except (jinja2.TemplateError, OSError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _check(renders: list[DockerRender]) -> int:
    problems = stale(renders)
    for item, reason in problems:
        print(f"stale: {_relative(item.output)} {reason} (run `make render`)", file=sys.stderr)
    if not problems:
        print(f"{len(renders)} rendered configs are up to date")
    return 1 if problems else 0


def _write(renders: list[DockerRender]) -> int:
    changed = write(renders)
    for path in changed:
        print(f"rendered {_relative(path)}")
    print(f"{len(renders)} configs, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
