"""How long the bench measures, and what counts as holding the SLO.

One place for every duration, so `--quick` (CI: under 3 minutes, numbers are only a smoke
test) and the full run (about 20 minutes, at most 30) differ only here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The SLO of loadtests/lib/profiles.js, judged here per step from the k6 summary.
P95_MS = 100.0
ERROR_RATE = 0.001
DROPPED_SHARE = 0.01


@dataclass(frozen=True)
class Plan:
    quick: bool
    step_seconds: int  # each search step: one constant arrival rate
    confirm_seconds: int  # each run at the rate found
    runs: int  # runs at the rate found; medians are reported
    start_rate: int  # first rate offered
    factor: float  # next rate after a step that held
    max_search_steps: int
    precision: float  # bisect until the failing rate is within this factor of the holding one
    max_rate: int
    pgbench_seconds: int
    pgbench_clients: int
    copy_seconds: float
    copy_batch: int
    drain_seconds: int  # phase 3: load offered while the writer is paused
    settle_timeout: float  # waiting for a backlog to drain between steps


FULL = Plan(
    quick=False,
    step_seconds=15,
    confirm_seconds=30,
    runs=3,
    start_rate=250,
    factor=2.0,
    max_search_steps=10,
    precision=1.1,
    max_rate=40_000,
    pgbench_seconds=20,
    pgbench_clients=10,
    copy_seconds=10,
    copy_batch=5000,
    drain_seconds=20,
    settle_timeout=180,
)

QUICK = Plan(
    quick=True,
    step_seconds=3,
    confirm_seconds=4,
    runs=1,
    start_rate=300,
    factor=2.5,
    max_search_steps=3,
    precision=3.0,
    max_rate=40_000,
    pgbench_seconds=3,
    pgbench_clients=4,
    copy_seconds=2,
    copy_batch=2000,
    drain_seconds=3,
    settle_timeout=60,
)


def next_rate(plan: Plan, held: list[int], broke: list[int]) -> int | None:
    """The next rate to offer in the search, or None when it is done.

    Multiply while every step holds; once one breaks, bisect (geometrically) between the
    highest that held and the lowest that broke until they are `precision` apart.
    """
    if len(held) + len(broke) >= plan.max_search_steps:
        return None
    low = max(held, default=0)
    if not broke:
        if not held:
            return plan.start_rate
        rate = round(low * plan.factor)
        return rate if rate <= plan.max_rate else None
    high = min(broke)
    if low == 0:
        # Even the first rate broke the SLO: look below it.
        rate = high // 4
        return rate if rate >= 10 else None
    if high / low <= plan.precision:
        return None
    return round(math.sqrt(low * high))
