"""Overload: more signups than the writer drains. With the writer paused its capacity is
zero, so any rate is above it; the stream fills to SIGNUP_MAX_BACKLOG and the API sheds with
fast 503s + Retry-After instead of queueing forever. When the writer resumes it catches up and
the API accepts again by itself, during the same load."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from lab.native.stack import Stack
from tests._probe import wait_until
from tests.phase2._phase2 import CLIENT_TIMEOUT, Load, emails, is_json_error, rows_by_email
from tests.phase3._phase3 import backlog, drained, phase3, statuses

pytestmark = pytest.mark.e2e
MAX_BACKLOG = 300


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    environment = {"app": {"SIGNUP_MAX_BACKLOG": str(MAX_BACKLOG), "SIGNUP_RETRY_AFTER": "2"}}
    with phase3("phase3-overload", environment=environment) as running:
        yield running


def test_sheds_with_503_and_recovers_when_the_writer_catches_up(stack: Stack) -> None:
    writer = stack.entry("writer").process
    assert writer is not None
    assert writer.process is not None
    writer.process.send_signal(signal.SIGSTOP)
    load = Load(stack.url, count=20_000, concurrency=6, deadline_seconds=60, tag="ov").start()
    try:
        load.wait_for(lambda seen: sum(o.status == 503 for o in seen) >= 200, timeout=30)
        assert backlog(stack)[0] == MAX_BACKLOG  # full, and never past the limit
        shed = httpx.post(
            f"{stack.url}/signup",
            json={"email": "shed@example.com", "first_name": "A", "last_name": "B"},
            timeout=CLIENT_TIMEOUT,
        )
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "2"
        assert is_json_error_body(shed)
        writer.process.send_signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        load.wait_for(
            lambda seen: sum(o.status == 202 and o.started > resumed_at for o in seen) >= 300,
            timeout=60,
        )
    finally:
        writer.process.send_signal(signal.SIGCONT)
        load.stop()
    outcomes = load.join()

    counts = statuses(outcomes)
    assert set(counts) == {202, 503}, counts  # no timeout (None), no 500, no 502/504
    assert all(is_json_error(o) for o in outcomes if o.status == 503)
    assert counts[202] >= MAX_BACKLOG + 300
    wait_until(drained(stack), timeout=60, what="backlog back to zero")
    # Every 202 is a row, shed signups are not: nothing accepted was lost.
    rows = {e: n for e, n in rows_by_email(stack).items() if e.startswith("ov-")}
    assert rows == dict.fromkeys(emails(outcomes, 202), 1)
    # A shed signup holds no claim: the person can send it again and it is accepted now.
    again = httpx.post(
        f"{stack.url}/signup",
        json={"email": "shed@example.com", "first_name": "A", "last_name": "B"},
        timeout=CLIENT_TIMEOUT,
    )
    assert again.status_code == 202


def is_json_error_body(response: httpx.Response) -> bool:
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("error"), str)
