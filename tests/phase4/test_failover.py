"""A primary lost under load, for real: phase 4 natively, a cluster node SIGKILLed.

Each test runs twice, on a stack with WAIT (SIGNUP_WAIT_REPLICAS=1, the default) and one
without (0). The tests run in file order; each kills a primary that still has a replica."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis

from lab.native import _hosts
from lab.native.stack import Stack
from signup import _shards
from tests import _cluster
from tests._probe import wait_until
from tests.phase2._phase2 import Load, is_json_error, rows_by_email
from tests.phase4._phase4 import (
    SHARDS,
    STREAM,
    cut,
    emails_on,
    nodes,
    phase4,
    promoted,
    rejoined,
    show_logs,
    waiting,
)

pytestmark = pytest.mark.e2e
PAUSED = "signups for this address are paused, retry later"
NOT_CONFIRMED = "signup not confirmed, check GET /signup/status before retrying"


@pytest.fixture(scope="module", params=["1", "0"], ids=["wait", "no-wait"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    with phase4(f"failover-{request.param}", variables={"WAIT_REPLICAS": request.param}) as s:
        yield s


def waits(stack: Stack) -> bool:
    return stack.ctx.topology["app"].environment["SIGNUP_WAIT_REPLICAS"] != "0"


def victim(stack: Stack) -> tuple[str, str]:
    """A live primary that has a live replica: (primary, replica)."""
    view = _cluster.layout(nodes(stack)[-1])
    for node in view:
        replica = next((r for r in view if r.replica_of == node.address and not r.failed), None)
        if node.primary and not node.failed and replica is not None:
            return node.address, replica.address
    raise AssertionError("no primary with a replica left")


def lost(stack: Stack, acknowledged: list[str]) -> list[str]:
    rows = rows_by_email(stack)
    assert all(rows.get(e, 0) <= 1 for e in acknowledged), "a signup became two rows"
    return [e for e in acknowledged if e not in rows]


@pytest.mark.skipif(_hosts.available() is not None, reason="hosts of their own need root")
def test_a_primary_whose_host_is_lost_under_load_pauses_only_its_shards(stack: Stack) -> None:
    """The primary's link goes down under load: its shards get fast 503s while the others go
    on, its replica is promoted, and once the host is back (as a replica of the promoted
    node) its shards accept again; every acknowledged signup is a row."""
    primary, replica = victim(stack)
    streams = _shards.streams(STREAM, SHARDS)
    own = {s for s in streams if _cluster.owner(primary, s).address == primary}
    load = Load(stack.url, count=30_000, concurrency=4, deadline_seconds=90, tag="cut").start()
    try:
        load.wait_for(lambda answers: len(answers) >= 200, timeout=30)
        cut(stack, primary, up=False)
        lost_at = time.monotonic()
        try:
            wait_until(promoted(stack, replica, primary), timeout=30, what="replica promoted")
        finally:
            cut(stack, primary, up=True)
        wait_until(rejoined(stack, primary, replica), timeout=30, what="old primary rejoined")
        back = time.monotonic()
        load.wait_for(lambda a: sum(1 for o in a if o.started > back) >= 300, timeout=30)
    finally:
        load.stop()
    answers = load.join()
    show_logs(stack)
    print(
        "own shards after the host came back:",
        Counter(
            (o.status, str(o.body)[:40])
            for o in answers
            if o.started > back and _shards.stream_of(STREAM, SHARDS, o.email) in own
        ),
    )
    shard_of = {o.email: _shards.stream_of(STREAM, SHARDS, o.email) for o in answers}
    statuses = Counter(o.status for o in answers)
    assert statuses.keys() <= {202, 503}, statuses
    refused = [o for o in answers if o.status == 503]
    assert refused, "the lost primary's shards were never refused"
    assert all(is_json_error(o) for o in refused)
    errors = {o.body["error"] for o in refused if isinstance(o.body, dict)}
    assert errors <= {PAUSED, NOT_CONFIRMED}
    assert {shard_of[o.email] for o in refused} <= own, "a shard of a live primary was refused"
    assert all(o.started >= lost_at - 1 for o in refused)
    assert any(o.status == 202 and shard_of[o.email] in own and o.started > back for o in answers)
    wait_until(lambda: waiting(stack) == 0, timeout=60, what="every shard drained")
    acknowledged = [o.email for o in answers if o.status == 202]
    if waits(stack):
        assert lost(stack, acknowledged) == []


def replicated(primary: str) -> bool:
    """The primary's one replica has everything the primary has."""
    host, port = primary.rsplit(":", 1)
    with redis.Redis(host=host, port=int(port), decode_responses=True) as client:
        info = client.info("replication")
    replica = info.get("slave0")
    return isinstance(replica, dict) and int(replica["offset"]) == int(info["master_repl_offset"])


def post(stack: Stack, emails: list[str]) -> dict[str, httpx.Response]:
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        return {
            e: client.post("/signup", json={"email": e, "first_name": "A", "last_name": "B"})
            for e in emails
        }


@pytest.mark.skipif(_hosts.available() is not None, reason="hosts of their own need root")
def test_a_primary_lost_while_its_replica_lags(stack: Stack) -> None:
    """The writer is behind (paused) and the replica's host is cut off for a moment, then the
    primary's host is lost: what the primary alone held is gone. With WAIT, none of it was
    acknowledged.

    Hosts, not processes: a paused replica's kernel keeps taking the replication stream into
    its socket, and a SIGKILLed primary's kernel keeps sending what was in its socket, so the
    replica may well get everything once it runs again. Links that are down drop it for sure.
    """
    primary, replica = victim(stack)
    before, during = (
        emails_on(stack, primary, 40, "lag")[:20],
        emails_on(stack, primary, 40, "lag")[20:],
    )
    writer = stack.entry("writer").process
    assert writer is not None
    assert writer.process is not None
    writer.process.send_signal(signal.SIGSTOP)
    try:
        first = post(stack, before)
        wait_until(lambda: replicated(primary), timeout=10, what="the replica caught up")
        cut(stack, replica, up=False)
        try:
            second = post(stack, during)
            cut(stack, primary, up=False)
        finally:
            cut(stack, replica, up=True)
        try:
            wait_until(promoted(stack, replica, primary), timeout=30, what="replica promoted")
        finally:
            cut(stack, primary, up=True)
        wait_until(rejoined(stack, primary, replica), timeout=30, what="old primary rejoined")
    finally:
        writer.process.send_signal(signal.SIGCONT)
    assert {r.status_code for r in first.values()} == {202}
    wait_until(lambda: waiting(stack) == 0, timeout=60, what="every shard drained")
    acknowledged = [e for e, r in {**first, **second}.items() if r.status_code == 202]
    if waits(stack):
        assert {(r.status_code, r.json()["error"]) for r in second.values()} == {
            (503, NOT_CONFIRMED)
        }
        assert all(r.headers["Retry-After"] == "1" for r in second.values())
        assert lost(stack, acknowledged) == []
    else:
        assert {r.status_code for r in second.values()} == {202}
        assert lost(stack, acknowledged) == during
