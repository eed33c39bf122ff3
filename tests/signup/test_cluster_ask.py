"""The cluster client follows ASK to a node it has never met: a node added to the cluster
after the client read its layout, while slots move onto it (growing the cluster under load).

redis-py alone fails there with an AttributeError (signup.stores.cluster._Cluster says how);
this moves one shard's slot by hand, key by key as `redis-cli --cluster rebalance` does, and
asks for its keys in the middle of the move."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lab._proc import ServerProcess, free_ports
from lab.native.components.redis import ping
from lab.native.components.redis_cluster import node_command
from lab.runtime import LOOPBACK
from signup import _shards, _stream
from signup.config import Settings
from signup.stores.cluster import ClusterStore, NotReplicated, ShardUnavailable
from signup.validation import SignupRequest
from tests import _cluster
from tests._probe import wait_until
from tests.conftest import RedisCluster

SHARDS = 12


@pytest.fixture
def newcomer(tmp_path: Path, redis_cluster: RedisCluster) -> Iterator[str]:
    """A seventh node, joined to the cluster empty (no slots)."""
    port, bus = free_ports(2)
    process = ServerProcess(
        node_command(LOOPBACK, port, tmp_path / "node", bus_port=bus),
        check=lambda: ping(port),
        port=port,
        log_file=tmp_path / "node.log",
        env={},
    )
    process.start()
    address = f"{LOOPBACK}:{port}"
    try:
        existing = redis_cluster.addresses.split(",")[0]
        subprocess.run(
            ["redis-cli", "--cluster", "add-node", address, existing],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(
            lambda: any(n.address == address for n in _cluster.layout(existing)),
            what="the newcomer known to the cluster",
        )
        wait_until(
            lambda: client(address).cluster("info")["cluster_state"] == "ok",
            what="the newcomer sees every slot served",
        )
        yield address
    finally:
        process.stop()


def client(address: str) -> redis.Redis:
    host, port = address.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), decode_responses=True)


def test_a_signup_whose_shard_is_moving_to_a_new_node_is_answered(
    redis_cluster: RedisCluster, newcomer: str
) -> None:
    settings = Settings(
        store="cluster",
        redis_cluster_nodes=tuple(("127.0.0.1", n.port) for n in redis_cluster.nodes),
        shards=SHARDS,
        wait_replicas=0,
    )
    first = "before-the-move@example.com"
    stream = _shards.stream_of("signups", SHARDS, first)
    slot = _shards.slot(stream)
    owner = _cluster.owner(redis_cluster.addresses.split(",")[0], stream).address
    later = next(
        e
        for e in (f"during-the-move-{n}@example.com" for n in range(10_000))
        if _shards.stream_of("signups", SHARDS, e) == stream
    )

    # With WAIT: an email whose claim hash moved with the stream, so that mid-move the script
    # would run on the newcomer (ASK), and one more for after the move (MOVED).
    beside = next(
        e
        for e in (f"beside-{n}@example.com" for n in range(1_000_000))
        if _stream.claim_slot(stream, e)[0] == _stream.claim_slot(stream, first)[0]
    )
    last = next(
        e
        for e in (f"after-the-move-{n}@example.com" for n in range(10_000))
        if _shards.stream_of("signups", SHARDS, e) == stream
    )
    waiting = dataclasses.replace(settings, wait_replicas=1, wait_timeout_ms=50)

    async def scenario() -> tuple[object, ...]:
        store, durable = ClusterStore(settings), ClusterStore(waiting)
        try:
            await store.create(SignupRequest(first, "Ada", "Lovelace"))  # the layout is read
            await durable.status(first)  # and here
            await asyncio.to_thread(move_keys, owner, newcomer, slot)
            # ASK, to the newcomer, which holds the claim now.
            status = await store.status(first)
            # A new email's claim exists nowhere yet: mid-move, a script with it and the moved
            # stream is refused (TRYAGAIN) until the slot is the newcomer's: a 503.
            during = await asyncio.gather(
                store.create(SignupRequest(later, "Grace", "Hopper")),
                # Both keys are on the newcomer: followed, the script would run there after
                # the pipeline's WAIT on the old owner, which has a replica and would confirm
                # a write it never saw. With WAIT it is not followed: a 503, nothing written.
                durable.create(SignupRequest(beside, "Alan", "Turing")),
                return_exceptions=True,
            )
            await asyncio.to_thread(finish_move, redis_cluster, newcomer, slot)
            after = await store.create(SignupRequest(later, "Grace", "Hopper"))  # MOVED
            # MOVED with WAIT: sent again to the newcomer, and its WAIT runs there, where no
            # replica confirms it.
            moved = await asyncio.gather(
                durable.create(SignupRequest(last, "Edsger", "Dijkstra")), return_exceptions=True
            )
            return status, *during, after, moved[0]
        finally:
            await store.close()
            await durable.close()

    status, during, asked, after, moved = asyncio.run(scenario())
    assert status == "pending"
    assert isinstance(during, ShardUnavailable), during
    assert isinstance(asked, ShardUnavailable), asked
    assert isinstance(after, dict)
    assert isinstance(moved, NotReplicated), moved
    assert newcomer in str(moved)
    with client(newcomer) as new:
        assert new.xlen(stream) == 3  # first, later, last: never beside
        assert new.hget(*_stream.claim_slot(stream, beside)) is None


def finish_move(cluster: RedisCluster, target: str, slot: int) -> None:
    """The slot is the target's now, as every primary is told (redis-cli does the same)."""
    with client(target) as dst:
        target_id = dst.cluster("myid")
    for node in [*cluster.addresses.split(","), target]:
        with client(node) as each:
            if each.info("replication")["role"] == "master":
                each.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


def move_keys(source: str, target: str, slot: int) -> None:
    """Start moving `slot` from `source` to `target` and move every key it holds, leaving the
    slot half moved: the source still owns it and answers ASK for the keys it no longer has."""
    with client(source) as src, client(target) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.cluster("myid"))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.cluster("myid"))
        host, port = target.rsplit(":", 1)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", host, port, "", 0, 5000, "KEYS", *keys)
