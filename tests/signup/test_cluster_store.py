"""Phase 4's store against a real Redis Cluster (six nodes on loopback, three primaries).

The tests run in file order: the last one SIGKILLs a primary of the module's cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from signup import _shards, _stream
from signup.app import create_app
from signup.config import Settings
from signup.stores import DuplicateEmail, Overloaded
from signup.stores.cluster import ClusterStore, NotReplicated, ShardUnavailable, startup_nodes
from signup.validation import SignupRequest
from tests import _cluster
from tests._probe import wait_until
from tests.conftest import RedisCluster

STREAM = "signups"
SHARDS = 12


def settings(cluster: RedisCluster, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "store": "cluster",
        "redis_cluster_nodes": tuple(("127.0.0.1", node.port) for node in cluster.nodes),
        "shards": SHARDS,
        "pool_max": 8,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def signup(email: str) -> SignupRequest:
    return SignupRequest(email=email, first_name="Ada", last_name="Lovelace")


def emails_on(cluster: RedisCluster, primary: str, count: int, tag: str) -> list[str]:
    """`count` emails whose shard lives on `primary`."""
    found: list[str] = []
    number = 0
    while len(found) < count:
        email = f"{tag}-{number}@example.com"
        number += 1
        stream = _shards.stream_of(STREAM, SHARDS, email)
        if _cluster.owner(first(cluster), stream).address == primary:
            found.append(email)
    return found


def first(cluster: RedisCluster) -> str:
    return cluster.addresses.split(",")[0]


def claim_on_node(address: str, email: str) -> bytes | None:
    stream = _shards.stream_of(STREAM, SHARDS, email)
    host, port = address.rsplit(":", 1)
    with redis.Redis(host=host, port=int(port)) as client:
        client.execute_command("READONLY")
        value = client.hget(*_stream.claim_slot(stream, email))
    return value if isinstance(value, bytes) else None


async def create_all(store: ClusterStore, emails: list[str]) -> list[object]:
    try:
        return await asyncio.gather(
            *(store.create(signup(e)) for e in emails), return_exceptions=True
        )
    finally:
        await store.close()


def test_signups_are_claimed_and_queued_on_their_shards_primary(
    redis_cluster: RedisCluster,
) -> None:
    redis_cluster.flush()
    emails = [f"spread-{n}@example.com" for n in range(120)]
    results = asyncio.run(create_all(ClusterStore(settings(redis_cluster)), emails))
    assert [r for r in results if not isinstance(r, dict)] == []
    per_stream = Counter(_shards.stream_of(STREAM, SHARDS, e) for e in emails)
    for stream, count in per_stream.items():
        primary = _cluster.owner(first(redis_cluster), stream)
        with redis.Redis(host=primary.host, port=primary.port) as client:
            assert client.xlen(stream) == count
    # Every primary holds some: the shards spread over the cluster.
    owners = {_cluster.owner(first(redis_cluster), s).address for s in per_stream}
    assert len(owners) == 3


def test_the_same_email_in_any_case_is_one_signup(redis_cluster: RedisCluster) -> None:
    redis_cluster.flush()
    variants = ["Ada@Example.com", "ada@example.com", "ADA@EXAMPLE.COM"] * 20
    results = asyncio.run(
        create_all(ClusterStore(settings(redis_cluster)), [v.lower() for v in variants])
    )
    assert Counter(type(r).__name__ for r in results) == {"dict": 1, "DuplicateEmail": 59}
    assert all(isinstance(r, dict | DuplicateEmail) for r in results)


def test_with_wait_the_replica_has_the_signup_before_the_answer(
    redis_cluster: RedisCluster,
) -> None:
    redis_cluster.flush()
    email = "durable@example.com"
    asyncio.run(create_all(ClusterStore(settings(redis_cluster, wait_replicas=1)), [email]))
    primary = _cluster.owner(first(redis_cluster), _shards.stream_of(STREAM, SHARDS, email))
    replica = _cluster.replica_of(first(redis_cluster), primary.address)
    assert claim_on_node(replica.address, email) is not None


def test_signups_that_arrive_together_share_one_wait(redis_cluster: RedisCluster) -> None:
    """Group commit: 40 signups for one primary at once leave in a few groups, each ending in
    one WAIT that confirms all of its scripts; every signup is on the replica when answered."""
    redis_cluster.flush()
    primary = first(redis_cluster)
    emails = emails_on(redis_cluster, primary, 40, "together")
    results = asyncio.run(
        create_all(ClusterStore(settings(redis_cluster, wait_replicas=1)), emails)
    )
    assert all(isinstance(r, dict) for r in results), results
    host, port = primary.rsplit(":", 1)
    with redis.Redis(host=host, port=int(port)) as client:
        stats = client.info("commandstats")
    waits, scripts = stats["cmdstat_wait"]["calls"], stats["cmdstat_eval"]["calls"]
    assert scripts == 40
    assert 1 <= waits < 40 / 4, f"{waits} WAITs for 40 signups"
    replica = _cluster.replica_of(primary, primary)
    assert all(claim_on_node(replica.address, e) is not None for e in emails)


def test_a_replica_that_does_not_answer_makes_wait_refuse_the_202(
    redis_cluster: RedisCluster,
) -> None:
    """Paused, the replica acknowledges nothing: WAIT times out and the answer is a 503. The
    signup is kept (it will become a row), so asking again finds the email taken."""
    redis_cluster.flush()
    email = emails_on(redis_cluster, first(redis_cluster), 1, "lagging")[0]
    replica = _cluster.replica_of(first(redis_cluster), first(redis_cluster))
    pid = next(n.process.pid for n in redis_cluster.nodes if n.port == replica.port)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        store = ClusterStore(settings(redis_cluster, wait_replicas=1, wait_timeout_ms=50))
        (result,) = asyncio.run(create_all(store, [email]))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert isinstance(result, NotReplicated), result
    assert claim_on_node(first(redis_cluster), email) is not None
    (again,) = asyncio.run(create_all(ClusterStore(settings(redis_cluster)), [email]))
    assert isinstance(again, DuplicateEmail)


def test_a_node_that_hangs_holds_only_its_own_turns(redis_cluster: RedisCluster) -> None:
    """One turn per node: while a paused primary holds it, the next signup of its shards is
    refused once its wait for a turn runs out (a 503), and another primary's signup goes on."""
    redis_cluster.flush()
    view = _cluster.layout(first(redis_cluster))
    paused, other = [n.address for n in view if n.primary and n.address != first(redis_cluster)]
    stuck = emails_on(redis_cluster, paused, 2, "stuck")
    free = emails_on(redis_cluster, other, 1, "free")[0]
    pid = next(n.process.pid for n in redis_cluster.nodes if f"127.0.0.1:{n.port}" == paused)
    assert pid is not None
    store = ClusterStore(settings(redis_cluster, pool_max=1, pool_timeout=0.2, wait_replicas=0))

    async def scenario() -> list[Any]:
        await store._cluster.initialize()
        os.kill(pid, signal.SIGSTOP)
        try:
            hung = asyncio.ensure_future(store.create(signup(stuck[0])))
            await asyncio.sleep(0.05)  # it holds the paused node's one turn
            others = await asyncio.gather(
                store.create(signup(stuck[1])), store.create(signup(free)), return_exceptions=True
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        first_one = await asyncio.gather(hung, return_exceptions=True)
        await store.close()
        return [*first_one, *others]

    hung, waiting, elsewhere = asyncio.run(scenario())
    assert isinstance(waiting, Overloaded), waiting
    assert isinstance(elsewhere, dict), elsewhere
    assert isinstance(hung, dict | ShardUnavailable), hung  # answered after the pause, or not


def test_the_http_answers_of_the_cluster_store(redis_cluster: RedisCluster) -> None:
    redis_cluster.flush()
    body = {"email": "Grace@Example.com", "first_name": "Grace", "last_name": "Hopper"}
    with TestClient(create_app(settings(redis_cluster))) as client:
        accepted = client.post("/signup", json=body)
        assert accepted.status_code == 202
        assert accepted.json()["message"] == "signup accepted"
        again = client.post("/signup", json={**body, "email": "GRACE@example.com"})
        assert (again.status_code, again.json()) == (409, {"error": "email already exists"})
        status = client.get("/signup/status", params={"email": "grace@example.com"})
        assert status.json() == {"email": "grace@example.com", "status": "pending"}
        assert client.get("/readyz").status_code == 200


def test_a_lost_primary_pauses_its_shards_only_until_its_replica_takes_over(
    redis_cluster: RedisCluster,
) -> None:
    """SIGKILL one primary under a running store: its shards answer a fast 503
    (ShardUnavailable), the other primaries' shards go on, and once the replica is promoted
    its shards accept again. (A store started while a primary is down and not yet replaced
    fails until the failover: redis-py's first contact asks the primary of slot 0.)"""
    redis_cluster.flush()
    victim = first(redis_cluster)
    others = [n.address for n in _cluster.layout(victim) if n.primary and n.address != victim]
    lost = emails_on(redis_cluster, victim, 20, "lost")
    kept = emails_on(redis_cluster, others[0], 21, "kept")
    node = next(n for n in redis_cluster.nodes if f"127.0.0.1:{n.port}" == victim)

    async def scenario() -> tuple[list[Any], float, list[Any]]:
        store = ClusterStore(settings(redis_cluster, wait_replicas=0))
        try:
            await store.create(signup(kept[20]))  # the store knows the cluster
            node.process.kill()
            started = time.monotonic()
            during = await asyncio.gather(
                *(store.create(signup(e)) for e in [*lost[:10], *kept[:10]]),
                return_exceptions=True,
            )
            took = time.monotonic() - started
            await asyncio.to_thread(wait_until, promoted, 30, "the replica promoted")
            # The cluster's other nodes learn of the promotion by gossip; until the node the
            # store asks has, the store may be told the old layout once more.
            for _ in range(100):
                try:
                    await store.create(signup(lost[10]))
                    break
                except ShardUnavailable:
                    await asyncio.sleep(0.1)
            after = await asyncio.gather(
                *(store.create(signup(e)) for e in [*lost[11:20], *kept[10:20]]),
                return_exceptions=True,
            )
            return during, took, after
        finally:
            await store.close()

    def promoted() -> bool:
        return any(
            n.primary and n.slots and not n.failed and n.address not in (victim, *others)
            for n in _cluster.layout(others[0])
        )

    during, took, after = asyncio.run(scenario())
    assert all(isinstance(r, ShardUnavailable) for r in during[:10]), during[:10]
    assert all(isinstance(r, dict) for r in during[10:]), during[10:]
    assert took < 5, f"the 503s took {took:.1f} s"  # far below any client's timeout
    assert all(isinstance(r, dict) for r in after), after


def test_a_name_with_several_addresses_is_every_one_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Docker's DNS answers a scaled service's name with every container; redis-py would keep
    the first (a spare outside the cluster, once). A name that resolves to nothing stays as
    it is, for redis-py to report; an address named twice is asked once."""
    answers = {"redis-node": ["10.0.0.7", "10.0.0.2", "10.0.0.3"], "10.0.0.2": ["10.0.0.2"]}

    def resolve(host: str, port: int, *_: object) -> list[tuple[object, ...]]:
        if host not in answers:
            raise socket.gaierror(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    nodes = startup_nodes((("redis-node", 6379), ("10.0.0.2", 6379), ("gone", 6379)))
    assert nodes == [("10.0.0.7", 6379), ("10.0.0.2", 6379), ("10.0.0.3", 6379), ("gone", 6379)]
