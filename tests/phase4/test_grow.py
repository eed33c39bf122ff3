"""Growing the cluster under load, for real: phase 4 natively with two spare nodes, a fourth
primary and its replica added while signups arrive (`make cluster-grow` does the same)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from lab.native.components import redis_cluster
from lab.native.stack import Stack
from signup import _shards
from tests import _cluster
from tests._probe import wait_until
from tests.phase2._phase2 import Load, is_json_error, rows_by_email
from tests.phase4._phase4 import SHARDS, STREAM, nodes, phase4, primaries, waiting

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with phase4("grow", variables={"REDIS_NODES": "8"}) as running_stack:
        yield running_stack


def test_two_spare_nodes_stay_out_of_the_cluster_until_asked(stack: Stack) -> None:
    assert len(nodes(stack)) == 8
    assert len(primaries(stack)) == 3
    assert redis_cluster.spares(nodes(stack)) == nodes(stack)[6:]


def test_a_primary_added_under_load_takes_its_share_and_loses_nothing(stack: Stack) -> None:
    load = Load(stack.url, count=50_000, concurrency=4, deadline_seconds=120, tag="grow").start()
    try:
        load.wait_for(lambda answers: len(answers) >= 300, timeout=30)
        redis_cluster.grow(nodes(stack), timeout=180)  # GrowError has redis-cli's output
        done = len(load.snapshot())
        load.wait_for(lambda answers: len(answers) >= done + 300, timeout=30)
    finally:
        load.stop()
    answers = load.join()
    statuses = Counter(o.status for o in answers)
    assert statuses.keys() <= {202, 503}, statuses
    assert all(is_json_error(o) for o in answers if o.status == 503)
    # The new primary serves its share: a quarter of the slots, three of the twelve shards.
    assert len(primaries(stack)) == 4
    new = nodes(stack)[6]
    owners = Counter(_cluster.owner(new, s).address for s in _shards.streams(STREAM, SHARDS))
    assert owners[new] == 3, owners
    assert _cluster.replica_of(new, new).address == nodes(stack)[7]
    wait_until(lambda: waiting(stack) == 0, timeout=60, what="every shard drained")
    acknowledged = [o.email for o in answers if o.status == 202]
    rows = rows_by_email(stack)
    assert {e: rows.get(e, 0) for e in acknowledged} == dict.fromkeys(acknowledged, 1)
