"""Native stand-ins for compose services, keyed by compose service name.

Each builder turns one compose service into the processes that replace its containers. A
compose service with no builder must be listed in SKIPPED with the reason, and a test checks
that every service of every phase is one or the other.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.native.components import (
    app,
    monitoring,
    nginx,
    pgbouncer,
    postgres,
    redis,
    redis_cluster,
    writer,
)
from lab.runtime import ProcSpec, RunContext
from lab.topology import Service

Builder = Callable[[RunContext, Service], list[ProcSpec]]

BUILDERS: dict[str, Builder] = {
    "db": postgres.db,
    "migrate": postgres.migrate,
    "app": app.app,
    "prometheus": monitoring.prometheus,
    "alertmanager": monitoring.alertmanager,
    "postgres-exporter": monitoring.postgres_exporter,
    "pgbouncer": pgbouncer.pgbouncer,
    "pgbouncer-exporter": pgbouncer.pgbouncer_exporter,
    "nginx": nginx.nginx,
    "nginx-exporter": nginx.nginx_exporter,
    "redis": redis.redis,
    "redis-exporter": redis.redis_exporter,
    "redis-node": redis_cluster.redis_node,
    "cluster": redis_cluster.cluster,
    "writer": writer.writer,
    "claims": writer.claims,
}

SKIPPED: dict[str, str] = {
    "grafana": "no Grafana package for Debian: `make report` renders the dashboards' panels",
    "cadvisor": "the native supervisor exports the same container_* series from its cgroups",
}
