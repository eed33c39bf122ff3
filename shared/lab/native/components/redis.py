"""The `redis` and `redis-exporter` services: Debian's Redis and its Prometheus exporter.

Redis starts from the same config file the compose file mounts (phase3-queue/redis/redis.conf);
natively the command line adds the loopback address, the port and a data folder in the run
folder. The fsync policy comes from the service's REDIS_APPENDFSYNC, which the compose command
passes to Redis as --appendfsync. Tests start Redis with `server_command` too.
"""

from __future__ import annotations

from pathlib import Path

import redis as redis_py

from lab.native.components._spec import exporter, spec
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext, executable
from lab.topology import PHASES, Service

CONFIG = PHASES["phase3"] / "redis" / "redis.conf"
APPENDFSYNC = ("always", "everysec", "no")


def appendfsync(service: Service) -> str:
    value = service.environment.get("REDIS_APPENDFSYNC", "everysec").strip() or "everysec"
    if value not in APPENDFSYNC:
        raise ValueError(f"REDIS_APPENDFSYNC={value!r} must be one of {', '.join(APPENDFSYNC)}")
    return value


def server_command(
    port: int,
    folder: Path,
    fsync: str = "everysec",
    *,
    config: Path = CONFIG,
    host: str = LOOPBACK,
) -> list[str]:
    """redis-server in the foreground at host:port (loopback unless phase 4 gives a host of
    its own), started from `config`, its AOF in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        executable("redis-server", "redis-server"),
        str(config),
        "--bind",
        host,
        # Loopback only: on a host of its own a node must answer the others.
        "--protected-mode",
        "yes" if host == LOOPBACK else "no",
        "--port",
        str(port),
        "--dir",
        str(folder),
        "--appendfsync",
        fsync,
        "--daemonize",
        "no",
        "--logfile",
        "",  # stdout, which the supervisor writes to the service's log
    ]


def ping(port: int, host: str = LOOPBACK) -> bool:
    """Readiness: Redis at host:port answers PING (phase 4's nodes have hosts of their own)."""
    client = redis_py.Redis(host=host, port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


def redis(ctx: RunContext, service: Service) -> list[ProcSpec]:
    port = ctx.ports.redis
    address = f"{LOOPBACK}:{port}"
    ctx.addresses[(service.name, CONTAINER_PORTS["redis"])] = address
    ctx.members[service.name] = [address]
    return [
        spec(
            ctx,
            service,
            command=server_command(port, ctx.run_dir / "redis", appendfsync(service)),
            check=lambda: ping(port),
            port=port,
            url=f"redis://{address}",
        )
    ]


def redis_exporter(ctx: RunContext, service: Service) -> list[ProcSpec]:
    # The exporter reads its settings from the environment in both runtimes (REDIS_ADDR,
    # REDIS_EXPORTER_CHECK_SINGLE_STREAMS); only the addresses differ.
    binary = executable("prometheus-redis-exporter", "prometheus-redis-exporter")
    return exporter(
        ctx,
        service,
        ctx.ports.redis_exporter,
        lambda address: [binary],
        extra_env=lambda address: {"REDIS_EXPORTER_WEB_LISTEN_ADDRESS": address},
    )
