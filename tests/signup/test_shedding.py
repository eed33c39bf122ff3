"""The wait policy on a clock the test moves: every case is a schedule of arrivals and grants,
so the same inputs give the same decisions, with no sleep and nothing timed."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import pytest

from signup._shedding import Waiter, WaitPolicy

TARGET, INTERVAL = 0.050, 0.200
MS = 0.001


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0  # not 0: nothing may depend on the clock starting there

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy(clock: Clock) -> WaitPolicy:
    return WaitPolicy(TARGET, INTERVAL, clock=clock)


@dataclass
class Pool:
    """A FIFO pool driven one millisecond at a time: an arrival every `arrive` ms and a grant
    every `serve` ms while anyone waits. Records who was refused when, and who waited how long."""

    policy: WaitPolicy
    clock: Clock
    queue: deque[Waiter] = field(default_factory=deque)
    refused: list[int] = field(default_factory=list)  # ms of each refusal
    waits: list[tuple[int, float]] = field(default_factory=list)  # (ms admitted, wait)
    admitted_at: dict[int, int] = field(default_factory=dict)
    ms: int = 0

    def run(self, until_ms: int, arrive: int | None, serve: int | None) -> None:
        start = self.clock.now - self.ms * MS
        while self.ms < until_ms:
            self.ms += 1
            self.clock.now = start + self.ms * MS
            if arrive and self.ms % arrive == 0:
                if self.policy.refuses() is not None:
                    self.refused.append(self.ms)
                else:
                    waiter = self.policy.join()
                    self.admitted_at[id(waiter)] = self.ms
                    self.queue.append(waiter)
            if serve and self.ms % serve == 0 and self.queue:
                waiter = self.queue.popleft()
                self.waits.append((self.admitted_at.pop(id(waiter)), self.clock.now - waiter.since))
                self.policy.leave(waiter, served=True)


def test_nobody_waiting_is_never_a_reason_to_refuse(policy: WaitPolicy, clock: Clock) -> None:
    for _ in range(1000):
        clock.now += 1.0
        assert policy.refuses() is None
        policy.leave(policy.join(), served=True)
    assert not policy.shedding


def test_a_burst_that_drains_within_the_interval_is_served_not_shed(
    policy: WaitPolicy, clock: Clock
) -> None:
    pool = Pool(policy, clock)
    pool.run(100, arrive=1, serve=2)  # 100 ms of twice what the pool serves
    pool.run(400, arrive=4, serve=2)  # then half of it: the queue drains
    assert pool.refused == []
    assert max(wait for _, wait in pool.waits) > TARGET  # it did wait past the target
    assert not policy.shedding


def test_a_stall_is_ridden_out_until_the_queue_stood_for_the_interval(
    policy: WaitPolicy, clock: Clock
) -> None:
    pool = Pool(policy, clock)
    pool.run(240, arrive=2, serve=None)  # nothing handed out: the database is stuck
    assert pool.refused == []  # the first waiter is at 240 ms < target + interval
    pool.run(260, arrive=2, serve=None)
    assert pool.refused  # now it stood above the target for a whole interval
    assert 252 <= pool.refused[0] <= 254  # the arrival after the oldest (2 ms) reached 252 ms


def test_the_backlog_a_stall_leaves_drains_without_refusals(
    policy: WaitPolicy, clock: Clock
) -> None:
    """The oldest wait stays over the target for longer than the interval while the backlog
    drains; the queue shrinks all that time, so it is not an overload."""
    pool = Pool(policy, clock)
    pool.run(200, arrive=2, serve=None)  # a 200 ms stall: 100 waiters
    pool.run(1000, arrive=2, serve=1)  # then service twice the arrivals
    assert pool.refused == []
    assert sum(1 for _, wait in pool.waits if wait > TARGET) > 100
    assert not pool.queue


def test_a_sustained_overload_is_shed_at_once_and_served_near_the_target(
    policy: WaitPolicy, clock: Clock
) -> None:
    pool = Pool(policy, clock)
    pool.run(3000, arrive=1, serve=2)  # arrivals at twice the pool's pace for 3 s
    assert policy.shedding
    # About every other arrival refused: the pool serves half of them.
    assert 1300 <= len(pool.refused) <= 1600
    # Those admitted once shedding settled waited about the target, not longer.
    settled = [wait for admitted, wait in pool.waits if admitted > 1000]
    assert settled
    assert max(settled) < TARGET + 5 * MS


def test_after_an_overload_ends_refusals_stop_once_the_queue_is_empty(
    policy: WaitPolicy, clock: Clock
) -> None:
    pool = Pool(policy, clock)
    pool.run(2000, arrive=1, serve=2)
    assert policy.shedding
    last = pool.refused[-1]
    pool.run(4000, arrive=4, serve=2)  # the load falls under what the pool serves
    assert not policy.shedding
    assert last >= 1999 - 2  # it shed right to the end of the overload...
    assert [ms for ms in pool.refused if ms > 2000 + 100] == []  # ...and not after it drained


def test_shedding_stays_armed_while_the_queue_dips_under_the_target(
    policy: WaitPolicy, clock: Clock
) -> None:
    waiters = [policy.join() for _ in range(3)]
    clock.now += TARGET + INTERVAL + MS
    assert policy.refuses() is not None  # stood, and grew (nothing left): armed
    for waiter in waiters[:2]:
        policy.leave(waiter, served=True)
    fresh = policy.join()
    policy.leave(waiters[2], served=True)  # the oldest now waited 0 ms
    assert policy.oldest_wait() < TARGET
    assert policy.shedding
    policy.leave(fresh, served=True)  # nobody waits: disarmed
    assert not policy.shedding
    assert policy.refuses() is None


def test_the_expected_wait_is_the_queue_over_the_recent_pace(
    policy: WaitPolicy, clock: Clock
) -> None:
    stuck = policy.join()
    clock.now += TARGET + INTERVAL + MS
    assert policy.refuses() == math.inf  # armed, and nothing handed out for an interval
    # Ten connections handed out over the last interval: a pace of 50 per second.
    for _ in range(10):
        clock.now += INTERVAL / 20
        policy.leave(policy.join(), served=True)
    assert policy.shedding
    # One waits: a newcomer is second in line, 2 / 50 s = 40 ms, under the target.
    assert policy.refuses() is None
    second = policy.join()
    # Two wait: a newcomer can expect 3 / 50 s = 60 ms, over it.
    assert policy.refuses() == pytest.approx(0.060)
    for waiter in (stuck, second):
        policy.leave(waiter, served=False)
    assert policy.waiting == 0


def test_a_waiter_leaving_out_of_turn_leaves_the_oldest_in_front(
    policy: WaitPolicy, clock: Clock
) -> None:
    first = policy.join()
    clock.now += 0.010
    second = policy.join()
    clock.now += 0.010
    policy.leave(second, served=False)  # a timeout, say
    assert policy.oldest_wait() == pytest.approx(0.020)
    policy.leave(first, served=True)
    assert policy.oldest_wait() == 0.0
    assert policy.waiting == 0


def test_the_peak_wait_keeps_a_stall_that_ended_between_two_samples(
    policy: WaitPolicy, clock: Clock
) -> None:
    assert policy.take_peak() == 0.0
    waiter = policy.join()
    clock.now += 0.300
    policy.leave(waiter, served=True)
    clock.now += 0.700
    assert policy.oldest_wait() == 0.0
    assert policy.take_peak() == pytest.approx(0.300)
    assert policy.take_peak() == 0.0  # each sample starts afresh


def test_with_no_target_it_never_refuses_but_still_measures(clock: Clock) -> None:
    policy = WaitPolicy(None, INTERVAL, clock=clock)
    pool = Pool(policy, clock)
    pool.run(2000, arrive=1, serve=2)
    assert pool.refused == []
    assert not policy.shedding
    assert policy.oldest_wait() > 0.5
    assert policy.take_peak() >= policy.oldest_wait()  # the peak came just before a grant
