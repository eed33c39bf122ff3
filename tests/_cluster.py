"""Reading a real Redis Cluster's layout: who is primary, who replicates whom, who owns a key.
Shared by the store tests (a loopback cluster) and the phase 4 tests (nodes on hosts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.crc import key_slot


@dataclass(frozen=True)
class Node:
    address: str  # host:port
    primary: bool
    replica_of: str | None  # the primary's address
    slots: tuple[tuple[int, int], ...]
    failed: bool

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def layout(address: str) -> list[Node]:
    """CLUSTER NODES as one node at `address` sees it (redis-py parses the reply)."""
    host, port = address.rsplit(":", 1)
    with redis.Redis(host=host, port=int(port), socket_timeout=5, decode_responses=True) as c:
        reply = cast(dict[str, dict[str, Any]], c.execute_command("CLUSTER NODES"))
    address_of = {info["node_id"]: addr.split("@")[0] for addr, info in reply.items()}
    return [
        Node(
            address=addr.split("@")[0],
            primary="master" in info["flags"].split(","),
            replica_of=address_of.get(info["master_id"]),
            slots=tuple((int(low), int(high)) for low, high in info["slots"]),
            failed="fail" in info["flags"],
        )
        for addr, info in reply.items()
    ]


def owner(address: str, key: str) -> Node:
    """The primary that serves `key`'s slot, as the node at `address` sees it."""
    slot = key_slot(key.encode())
    for node in layout(address):
        if node.primary and any(low <= slot <= high for low, high in node.slots):
            return node
    raise AssertionError(f"no primary serves slot {slot}")


def replica_of(address: str, primary: str) -> Node:
    for node in layout(address):
        if node.replica_of == primary:
            return node
    raise AssertionError(f"{primary} has no replica")
