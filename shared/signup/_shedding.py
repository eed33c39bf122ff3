"""Whether a signup should queue for a database connection: judged by how long the queue has
stood, not by how many requests are in it.

A count is the wrong unit for a limit whose purpose is latency: 64 waiting requests are 32 ms
of queue at 2,000 signups a second and 640 ms at 100. The policy reads time instead, and tells
a good queue from a bad one as CoDel does (Nichols and Jacobson, "Controlling Queue Delay"):

- A queue that rises and drains again is a burst, or a short stall of the database (a slow
  commit, a checkpoint). It is absorbed, not shed: refusing there turns signups that would
  have been served into errors, and the SLO allows far fewer errors (0.1 %) than slow answers
  (5 %).
- A queue whose oldest request has waited at least `target` for a whole `interval`, and which
  is still growing, is standing: arrivals outrun service. "Still growing" is what tells an
  overload from the backlog a stall leaves behind, which drains by itself.

Once a standing queue is seen, shedding is armed: a newcomer is refused at once when the wait
it can expect is `target` or more, so the queue holds about `target` of waiting, the requests
served wait about that long, and every refusal costs no wait at all. It stays armed until
nobody waits, so a sustained overload is not judged afresh each time the queue dips.

Where this departs from CoDel, and why: CoDel drops at the head of its queue, at dequeue, at a
rising rate; here the pool's queue is psycopg_pool's, FIFO and private, and a request dropped
after waiting would be a slow 503. So the decision is made on arrival, with a fixed threshold
as Facebook's wangle uses in its overloaded regime. The wait a newcomer can expect comes from
Little's law (requests ahead over the pace connections were handed out at): the oldest wait
lags a whole wait behind the queue it measures, and a controller fed that lag oscillates.
Facebook's adaptive LIFO is not used either: it needs the queue's order, which psycopg_pool
does not expose, and with the queue held near `target` a first-come order serves no stale
request.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Waiter:
    since: float
    gone: bool = False


class WaitPolicy:
    """Who waits for a connection and since when; whether a newcomer is refused.

    Every method reads the injected `clock` once, so tests drive it with a fake one. `target`
    None switches refusing off; the waits are still tracked for the metrics.
    """

    def __init__(
        self,
        target: float | None,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.interval = interval
        self._clock = clock
        # In arrival order; one that left out of order is dropped once it reaches the front.
        self._waiters: deque[Waiter] = deque()
        self._waiting = 0
        # When connections were handed out, over the last interval: the pool's recent pace.
        self._grants: deque[float] = deque()
        # Since when the oldest wait has been at or above the target (None: it is below), and
        # the most requests that waited at once since then. Between two events the oldest wait
        # only grows, so the moment it crossed the target is known exactly (its start plus the
        # target), however far apart the events are.
        self._above_since: float | None = None
        self._most = 0
        self._shedding = False
        self._peak = 0.0

    @property
    def shedding(self) -> bool:
        """Armed: a standing queue was seen and has not emptied since."""
        return self._shedding

    @property
    def waiting(self) -> int:
        return self._waiting

    def refuses(self) -> float | None:
        """The wait a newcomer can expect, when it must be refused; None when it may queue."""
        now = self._clock()
        self._advance(now)
        if self.target is None or not self._shedding:
            return None
        expected = self._expected_wait(now)
        return expected if expected >= self.target else None

    def join(self) -> Waiter:
        now = self._clock()
        self._advance(now)
        waiter = Waiter(now)
        self._waiters.append(waiter)
        self._waiting += 1
        self._most = max(self._most, self._waiting)
        return waiter

    def leave(self, waiter: Waiter, *, served: bool) -> None:
        """`waiter` stopped waiting: with a connection (`served`), or without one (an error)."""
        now = self._clock()
        self._advance(now)
        waiter.gone = True
        self._waiting -= 1
        if served:
            self._grants.append(now)
        self._forget(now)
        while self._waiters and self._waiters[0].gone:
            self._waiters.popleft()
        if not self._waiters:
            # Whatever stood has drained: the next overload is judged afresh.
            self._above_since, self._shedding = None, False
        elif self.target is not None and self._oldest(now) < self.target:
            self._above_since = None

    def oldest_wait(self) -> float:
        return self._oldest(self._clock())

    def take_peak(self) -> float:
        """The longest wait seen since the last call: a once-a-second sample would miss a
        stall that came and went between two samples."""
        now = self._clock()
        self._advance(now)
        peak, self._peak = self._peak, self._oldest(now)
        return peak

    def _oldest(self, now: float) -> float:
        return now - self._waiters[0].since if self._waiters else 0.0

    def _forget(self, now: float) -> None:
        while self._grants and self._grants[0] <= now - self.interval:
            self._grants.popleft()

    def _expected_wait(self, now: float) -> float:
        self._forget(now)
        if not self._grants:
            return math.inf  # no connection handed out for a whole interval: a stall
        return (self._waiting + 1) * self.interval / len(self._grants)

    def _advance(self, now: float) -> None:
        """Bring the state up to `now`, given that nobody joined or left since the last event."""
        self._peak = max(self._peak, self._oldest(now))
        if self.target is None or not self._waiters or self._shedding:
            return
        if self._above_since is None:
            crossing = self._waiters[0].since + self.target
            if crossing > now:
                return
            self._above_since, self._most = crossing, self._waiting
        # A queue shorter than it has been since it stood is draining: the backlog of a stall.
        standing = now - self._above_since >= self.interval
        self._shedding = standing and self._waiting >= self._most
