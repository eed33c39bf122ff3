"""Phase 4 running for real: nginx, three replicas, a six-node Redis Cluster on hosts of its
own, the writer, PgBouncer and PostgreSQL. One stack for the module."""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from lab.loadtest import _walls
from lab.native import _cgroup, _hosts
from lab.native.components import SKIPPED
from lab.native.stack import Stack
from lab.topology import load
from signup import _shards
from tests import _cluster
from tests._contract import check_contract
from tests._probe import wait_until
from tests.phase2._phase2 import Load, emails, rows_by_email
from tests.phase4._phase4 import SHARDS, STREAM, nodes, phase4, primaries, waiting

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with phase4("phase4") as running_stack:
        yield running_stack


def test_native_matches_compose(stack: Stack) -> None:
    topology = load("phase4", {})
    started = Counter(e.spec.service for e in stack.supervisor.running)
    skipped = ("prometheus", "alertmanager", "postgres-exporter")
    expected = {
        n: s.replicas for n, s in topology.services.items() if n not in (*SKIPPED, *skipped)
    }
    assert dict(started) == expected
    assert expected["redis-node"] == 6
    if _cgroup.available() is None:
        for entry in stack.supervisor.running:
            service = topology[entry.spec.service]
            assert entry.cgroup is not None, f"{entry.spec.name} runs outside a cgroup"
            assert entry.cgroup.limits() == (service.cpus, service.memory), entry.spec.name


def test_each_redis_node_is_its_own_line_in_the_cpu_accounting(stack: Stack) -> None:
    """One primary at its quota is phase 4's wall while the other nodes idle: summed with
    them it would read as a sixth of the service's quota. App replicas, which nginx balances,
    stay one line."""
    counters = _walls.counters(f"http://127.0.0.1:{stack.ctx.ports.containers}")
    nodes_seen = {s for s in counters.cpu_seconds if s.startswith("redis-node")}
    assert nodes_seen == {f"redis-node-{i}" for i in range(1, 7)}
    assert "app" in counters.cpu_seconds
    if _cgroup.available() is None:
        topology = load("phase4", {})
        node, app = topology["redis-node"], topology["app"]
        assert counters.quota_cores["redis-node-1"] == pytest.approx(node.cpus)
        assert counters.quota_cores["app"] == pytest.approx(app.replicas * (app.cpus or 0))


@pytest.mark.skipif(_hosts.available() is not None, reason="network namespaces need root")
def test_every_node_is_a_host_of_its_own_and_the_cluster_knows_it_so(stack: Stack) -> None:
    addresses = [n.rsplit(":", 1)[0] for n in nodes(stack)]
    assert len(set(addresses)) == 6
    assert all(ipaddress.ip_address(a) in _hosts.SUBNETS for a in addresses)
    seen = {n.address.rsplit(":", 1)[0] for n in _cluster.layout(nodes(stack)[0])}
    assert seen == set(addresses)


def test_three_primaries_each_with_a_replica_each_with_four_shards(stack: Stack) -> None:
    view = _cluster.layout(nodes(stack)[0])
    replicas = {n.replica_of for n in view if not n.primary}
    assert replicas == set(primaries(stack))
    owners = Counter(
        _cluster.owner(nodes(stack)[0], s).address for s in _shards.streams(STREAM, SHARDS)
    )
    assert sorted(owners.values()) == [4, 4, 4]


def test_the_contract_through_nginx(stack: Stack) -> None:
    check_contract(stack.url, created=202)
    wait_until(lambda: status_of(stack, "ada@example.com") == "recorded", what="the row")


def status_of(stack: Stack, email: str) -> str:
    response = httpx.get(f"{stack.url}/signup/status", params={"email": email}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_64_concurrent_signups_of_one_email_in_mixed_case(stack: Stack) -> None:
    spellings = ["Same-64@Example.com", "same-64@example.com", "SAME-64@EXAMPLE.COM"]
    start = threading.Barrier(64)
    codes: list[int] = []
    lock = threading.Lock()

    def post(index: int) -> None:
        body = {"email": spellings[index % 3], "first_name": "Same", "last_name": "Person"}
        with httpx.Client(timeout=15) as client:
            start.wait(timeout=30)
            code = client.post(f"{stack.url}/signup", json=body).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(codes) == {202: 1, 409: 63}
    wait_until(lambda: waiting(stack) == 0, timeout=30, what="drained")
    assert rows_by_email(stack)["same-64@example.com"] == 1


def test_signups_through_nginx_become_exactly_one_row_each(stack: Stack) -> None:
    load = Load(stack.url, count=600, concurrency=6, deadline_seconds=60, tag="p4").start()
    outcomes = load.join()
    assert Counter(o.status for o in outcomes) == {202: 600}
    accepted = emails(outcomes, 202)
    assert len({_shards.stream_of(STREAM, SHARDS, e) for e in accepted}) == SHARDS
    wait_until(lambda: waiting(stack) == 0, timeout=60, what="every shard drained")
    rows = rows_by_email(stack)
    assert {e: n for e, n in rows.items() if e.startswith("p4-")} == dict.fromkeys(accepted, 1)
