"""Shared by the phase 4 tests: the stack, its cluster's nodes, and emails of one shard."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import redis
import redis.cluster
from redis.cluster import ClusterNode

from lab.native import _hosts
from lab.native.stack import Stack, running
from signup import _shards, _stream
from tests import _cluster
from tests.conftest import server_folder
from tests.phase2._phase2 import SKIP_MONITORING

STREAM = "signups"
SHARDS = 12  # the compose file's SHARDS default


@contextmanager
def phase4(
    name: str,
    *,
    variables: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Stack]:
    """Phase 4 natively, on free ports, in a folder outside pytest's (see server_folder)."""
    with (
        server_folder(f"{name}-") as folder,
        running(
            "phase4", folder, variables=variables, environment=environment, skip=SKIP_MONITORING
        ) as stack,
    ):
        yield stack


def show_logs(stack: Stack) -> None:
    """What the apps and the writer logged, printed: pytest shows it beside a failure. The
    apps log a line per refused signup: those are counted by reason, with the lines of the log
    where each was first and last seen, which is what says why a shard stayed refused."""
    for entry in [*stack.entries("app"), *stack.entries("writer")]:
        lines = stack.ctx.log(entry.spec.name).read_text(errors="replace").splitlines()
        interesting = [line for line in lines if "refused:" not in line]
        print(f"--- {entry.spec.name}: last of {len(lines)} lines", *interesting[-25:], sep="\n")
        reasons: dict[str, list[int]] = {}
        for number, line in enumerate(lines, 1):
            if "refused:" in line:
                reasons.setdefault(line.split("refused:", 1)[1].strip(), []).append(number)
        for reason, seen in reasons.items():
            print(f"    refused {len(seen)}x, lines {seen[0]} to {seen[-1]}: {reason[:160]}")


def nodes(stack: Stack) -> list[str]:
    return list(stack.ctx.members["redis-node"])


def primaries(stack: Stack) -> list[str]:
    return sorted(n.address for n in _cluster.layout(nodes(stack)[0]) if n.primary)


def cluster_client(stack: Stack) -> redis.cluster.RedisCluster:
    """A client that starts from whichever node answers (a test may have killed some)."""
    startup = [
        ClusterNode(host, int(port))  # type: ignore[no-untyped-call]
        for host, port in (n.rsplit(":", 1) for n in nodes(stack))
    ]
    return redis.cluster.RedisCluster(
        startup_nodes=startup, socket_timeout=5, socket_connect_timeout=1
    )


def waiting(stack: Stack) -> int:
    """Signups in every shard's stream, plus those read and not acknowledged."""
    total = 0
    with cluster_client(stack) as client:
        for stream in _shards.streams(STREAM, SHARDS):
            if client.exists(stream):
                total += int(client.xlen(stream))
                total += int(client.xpending(stream, _stream.GROUP)["pending"])
    return total


def promoted(stack: Stack, replica: str, gone: str) -> Callable[[], bool]:
    """True once `replica` serves slots as a primary, as every node but `gone` sees it."""

    def check() -> bool:
        for address in nodes(stack):
            if address == gone:
                continue
            view = _cluster.layout(address)
            if not any(n.address == replica and n.primary and n.slots for n in view):
                return False
        return True

    return check


def rejoined(stack: Stack, node: str, primary: str) -> Callable[[], bool]:
    """True once `node` is back as a replica of `primary`, with its link to it up."""

    def check() -> bool:
        host, port = node.rsplit(":", 1)
        with redis.Redis(host=host, port=int(port), socket_timeout=2) as client:
            info = client.info("replication")
        return bool(
            info.get("role") == "slave"
            and f"{info.get('master_host')}:{info.get('master_port')}" == primary
            and info.get("master_link_status") == "up"
        )

    return check


def cut(stack: Stack, address: str, up: bool) -> None:
    """Take the link of `address`'s host down (the host is gone for everyone) or up again."""
    index = nodes(stack).index(address) + 1
    _hosts.Hosts(len(nodes(stack)), owner=os.getpid()).set_link(index, up)


def emails_on(stack: Stack, primary: str, count: int, tag: str) -> list[str]:
    """`count` emails whose shard `primary` serves."""
    served = {
        stream
        for stream in _shards.streams(STREAM, SHARDS)
        if _cluster.owner(primary, stream).address == primary
    }
    found: list[str] = []
    number = 0
    while len(found) < count:
        email = f"{tag}-{number}@example.com"
        number += 1
        if _shards.stream_of(STREAM, SHARDS, email) in served:
            found.append(email)
    return found
