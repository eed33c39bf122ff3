"""Phase 4's `redis-node` and `cluster` services: a Redis Cluster on hosts of its own.

Each node is Debian's redis-server started from phase4-cluster/redis/redis.conf, inside a
network namespace with an address of its own on a bridge the run creates (lab.native._hosts),
under its compose CPU and memory limits. The `cluster` one-shot runs the same
create-cluster.sh the compose file runs, with the nodes' addresses. Where namespaces cannot be
made (not root), the nodes listen on loopback ports instead, and the runtime says so.
"""

from __future__ import annotations

import functools
import logging
import subprocess
from pathlib import Path

import redis as redis_py

from lab.native import _hosts
from lab.native.components._spec import spec
from lab.native.components.redis import appendfsync, ping, server_command
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext
from lab.topology import PHASES, Service

log = logging.getLogger("lab.native")
CONFIG = PHASES["phase4"] / "redis" / "redis.conf"
CREATE = PHASES["phase4"] / "redis" / "create-cluster.sh"
GROW = PHASES["phase4"] / "redis" / "grow-cluster.sh"
PORT = CONTAINER_PORTS["redis"]


def node_timeout(service: Service) -> int:
    raw = service.environment.get("REDIS_NODE_TIMEOUT_MS", "3000").strip() or "3000"
    if not raw.isdigit() or int(raw) < 100:
        raise ValueError(f"REDIS_NODE_TIMEOUT_MS={raw!r} must be milliseconds, at least 100")
    return int(raw)


def node_command(
    host: str,
    port: int,
    folder: Path,
    *,
    node_timeout_ms: int = 3000,
    fsync: str = "everysec",
    bus_port: int | None = None,
) -> list[str]:
    """One cluster node in the foreground at host:port, its nodes.conf and AOF in `folder`.
    The nodes talk to each other on `bus_port` (Redis's default: port + 10,000). Tests start
    their clusters with it too."""
    bus = [] if bus_port is None else ["--cluster-port", str(bus_port)]
    return [
        *server_command(port, folder, fsync, config=CONFIG, host=host),
        "--cluster-node-timeout",
        str(node_timeout_ms),
        *bus,
    ]


def _hosts_for(ctx: RunContext, count: int) -> _hosts.Hosts | None:
    """`count` hosts of the run's own, their addresses chosen now (the other services' configs
    name them) and made just before the first node starts; None where that cannot be."""
    reason = _hosts.available()
    if reason is not None:
        log.warning("cluster nodes on loopback ports, not hosts of their own: %s", reason)
        return None
    return _hosts.Hosts(count).plan()


def _make(ctx: RunContext, hosts: _hosts.Hosts) -> None:
    removed = _hosts.remove_stale()
    if removed:
        log.info("removed what a stopped run left: %s", ", ".join(removed))
    hosts.create()
    ctx.on_stop.append(hosts.destroy)


def redis_node(ctx: RunContext, service: Service) -> list[ProcSpec]:
    hosts = _hosts_for(ctx, service.replicas)
    specs = []
    members = ctx.members.setdefault(service.name, [])
    for index in range(1, service.replicas + 1):
        name = f"{service.name}-{index}"
        if hosts is not None:
            host, port, bus = hosts.address(index), PORT, None
        else:
            host, port = LOOPBACK, ctx.ports.replica("redis-node", index)
            bus = ctx.ports.replica("redis-node", 100 + index)
        members.append(f"{host}:{port}")
        command = node_command(
            host,
            port,
            ctx.run_dir / name,
            node_timeout_ms=node_timeout(service),
            fsync=appendfsync(service),
            bus_port=bus,
        )
        made = spec(
            ctx,
            service,
            name=name,
            command=command if hosts is None else hosts.wrap(index, command),
            check=lambda host=host, port=port: ping(port, host),  # type: ignore[misc]
            # The port check is of 127.0.0.1, where a node on a host of its own is not.
            port=port if hosts is None else None,
            url=f"redis://{host}:{port}",
        )
        if hosts is not None and index == 1:
            # Made when the run starts, not when it is planned (a config test builds a run's
            # processes without starting any).
            made.prepare = functools.partial(_make, ctx, hosts)
        specs.append(made)
    ctx.addresses[(service.name, PORT)] = members[0]
    return specs


def create_command(nodes: list[str]) -> list[str]:
    """create-cluster.sh over `nodes` (host:port each): half primaries, half replicas."""
    return ["sh", str(CREATE), *nodes]


def spares(nodes: list[str]) -> list[str]:
    """The nodes (host:port) that answer but are in no cluster yet, in their order."""
    found = []
    for node in nodes:
        host, port = node.rsplit(":", 1)
        client = redis_py.Redis(host=host, port=int(port), socket_timeout=2)
        try:
            known = int(client.cluster("info")["cluster_known_nodes"])
        finally:
            client.close()
        if known == 1:
            found.append(node)
    return found


def grow_command(nodes: list[str]) -> list[str]:
    """grow-cluster.sh adding the first two spare nodes (a primary and its replica)."""
    free = spares(nodes)
    if len(free) < 2:
        raise ValueError(
            f"{len(free)} spare nodes: growing by a primary and its replica needs 2 "
            "(start phase 4 with two more nodes than the cluster has: REDIS_NODES=8)"
        )
    member = next(n for n in nodes if n not in free)
    return ["sh", str(GROW), member, free[0], free[1]]


class GrowError(RuntimeError):
    """The cluster could not be grown; the message has what redis-cli said."""


def grow(nodes: list[str], timeout: float = 300.0) -> str:
    """Grow the cluster of `nodes` by a primary and its replica (grow_command) and wait for it:
    redis-cli's output. Under a small CPU quota per node, moving a quarter of the slots takes
    tens of seconds even with no keys: a few commands per slot, each a round trip."""
    try:
        done = subprocess.run(
            grow_command(nodes), capture_output=True, text=True, timeout=timeout, check=False
        )
    except ValueError as exc:
        raise GrowError(str(exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise GrowError(f"growing the cluster took more than {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise GrowError(f"growing the cluster failed: {done.stdout}{done.stderr}")
    return done.stdout


def cluster(ctx: RunContext, service: Service) -> list[ProcSpec]:
    """Once, after the nodes: form the cluster (create-cluster.sh, as under Docker)."""
    nodes = ctx.members.get("redis-node", [])
    return [
        spec(
            ctx,
            service,
            command=create_command(nodes),
            check=lambda: True,
            port=None,
            env=ctx.rewrite(service.environment),  # PRIMARIES
            oneshot=True,
            timeout=60.0,
        )
    ]
