"""Phase 3 under failure, with the supervisor's watch loop on (as under `make phase3`): the
writer SIGKILLed mid-batch three times, then Redis SIGKILLed, each during a bounded load.
Both come back by the compose restart policy alone; the test only kills.

The claim idle time is short here (1 s) so a killed writer's batch is taken over quickly; a
batch of 200 rows takes milliseconds, far below it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from lab.native.stack import Stack
from tests._probe import wait_until
from tests.phase2._phase2 import CLIENT_TIMEOUT, Load, emails, is_json_error, rows_by_email
from tests.phase3._phase3 import (
    alive,
    drained,
    evidence,
    held_by_writer,
    phase3,
    statuses,
    writer_pid,
)

pytestmark = pytest.mark.e2e
WRITER = {
    "SIGNUP_WRITER_BATCH_SIZE": "200",
    "SIGNUP_WRITER_MAX_WAIT_MS": "100",
    "SIGNUP_WRITER_CLAIM_IDLE_MS": "1000",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with phase3("phase3-failures", environment={"writer": WRITER}, watch=True) as running_stack:
        yield running_stack


def rows_of(stack: Stack, tag: str) -> dict[str, int]:
    return {e: n for e, n in rows_by_email(stack).items() if e.startswith(f"{tag}-")}


def test_writer_sigkilled_mid_batch_three_times(stack: Stack) -> None:
    entry = stack.entry("writer")
    restarts = entry.restarts
    # Enough for the three kills; stopped as soon as they are done.
    load = Load(stack.url, count=20_000, concurrency=6, deadline_seconds=60, tag="wk").start()
    try:
        for _ in range(3):
            pid = writer_pid(stack)
            # Mid-batch: the writer has read entries it has not acknowledged yet.
            wait_until(lambda pid=pid: held_by_writer(stack, pid) > 0, timeout=30, what="batch")  # type: ignore[misc]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda pid=pid: not alive(pid), timeout=10, what="writer dead")  # type: ignore[misc]
            # No one but the supervisor starts it again.
            wait_until(
                lambda pid=pid: entry.exit_code is None and writer_pid(stack) != pid,  # type: ignore[misc]
                timeout=30,
                what="writer restarted by the supervisor",
            )
    finally:
        load.stop()
    outcomes = load.join()
    assert entry.restarts == restarts + 3
    assert statuses(outcomes) == {202: len(outcomes)}
    wait_until(drained(stack), timeout=60, what="backlog back to zero")
    assert rows_of(stack, "wk") == dict.fromkeys(emails(outcomes, 202), 1)


def test_redis_sigkilled_and_restarted_during_load(stack: Stack) -> None:
    entry = stack.entry("redis")
    restarts = entry.restarts
    load = Load(stack.url, count=20_000, concurrency=6, deadline_seconds=60, tag="rk").start()
    try:
        load.wait_for(lambda seen: len(seen) >= 200, timeout=30)
        assert entry.process is not None
        assert entry.process.pid is not None
        os.kill(entry.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: entry.restarts > restarts, timeout=30, what="redis restarted")
        back_at = time.monotonic()
        load.wait_for(
            lambda seen: sum(o.status == 202 and o.started > back_at for o in seen) >= 200,
            timeout=60,
        )
    finally:
        load.stop()
    outcomes = load.join()

    # No client waited into its timeout; while Redis was down the answer was the app's JSON
    # 500, and while the restarted Redis still loaded its append-only file (it refuses writes
    # with LOADING) a JSON 503: never a hang, a 502/504 or an HTML page.
    assert [o for o in outcomes if o.status is None] == [], f"timeout is {CLIENT_TIMEOUT} s"
    failures = [o for o in outcomes if o.status != 202]
    odd = [o for o in failures if not (o.status in (500, 503) and is_json_error(o))]
    assert not odd, f"{statuses(failures)}\n{evidence(stack, odd)}"
    assert all(o.ended >= killed_at for o in failures)

    # A 500 whose script ran just before Redis died is ambiguous (it may be queued, and AOF
    # kept it). Sending the same signup again resolves it: 202 (it was not) or 409 (it was).
    # A 503 was refused before the script ran; sent again, it is a 202.
    with httpx.Client(base_url=stack.url, timeout=CLIENT_TIMEOUT) as client:
        resent = {
            o.email: client.post(
                "/signup", json={"email": o.email, "first_name": "Load", "last_name": "Again"}
            ).status_code
            for o in failures
        }
    assert set(resent.values()) <= {202, 409}, resent

    wait_until(drained(stack), timeout=60, what="backlog back to zero")
    # Every 202 before the kill survived it (AOF), every 202 after it too: one row each.
    assert rows_of(stack, "rk") == dict.fromkeys(emails(outcomes, 202) + list(resent), 1)
