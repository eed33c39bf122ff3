"""How long the bench measures, and what counts as holding the SLO.

One place for every duration, so `--quick` (CI: about 9 minutes, numbers are only a smoke
test) and the full run (75 to 90 minutes) differ only here. The scale model (every service
under a small quota) and the whole-machine run have a plan each.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from lab.topology import REPO

# The SLO every k6 scenario is judged by, written once for k6 (profiles.js) and the bench,
# which judges it here per step from the k6 summary: 95 % of valid signups within p95Ms,
# fewer than errorRate of requests failing, fewer than droppedShare of arrivals dropped.
SLO_FILE = REPO / "loadtests" / "lib" / "slo.json"
_SLO = json.loads(SLO_FILE.read_text())
P95_MS = float(_SLO["p95Ms"])
ERROR_RATE = float(_SLO["errorRate"])
DROPPED_SHARE = float(_SLO["droppedShare"])


# Keyword-only, so the fields keep their order (the JSON's) and each plan names only what it
# sets: the whole-machine part's PostgreSQL and drain durations are 0 in the scale model's.
@dataclass(frozen=True, kw_only=True)
class Plan:
    quick: bool = False
    step_seconds: int  # each search step: one constant arrival rate
    confirm_seconds: int  # each run at the rate found
    runs: int  # runs at the rate found; medians are reported
    start_rate: int  # first rate offered
    factor: float  # next rate after a step that held
    max_search_steps: int
    precision: float  # bisect until the failing rate is within this factor of the holding one
    max_rate: int = 40_000
    pgbench_seconds: int = 0
    pgbench_clients: int = 0
    copy_seconds: float = 0
    copy_batch: int = 0
    drain_seconds: int = 0  # phase 3: load offered while the writers are stopped
    settle_timeout: float  # waiting for a backlog to drain between steps
    warm_up: bool = True  # a first step at half the first rate, not counted
    confirm_attempts: int = 2  # rates confirmed before giving up (each a step lower)
    confirm_step: float = 0.85  # the next rate confirmed, as a share of the one that failed
    max_replicas: int = 1  # the scale model's sweeps: at most this many app replicas
    gain: float = 1.1  # ... and only while one more replica adds at least 10 %
    burst_seconds: int = 0  # the burst: this long at BURST_FACTOR x phase 2's best
    # After the warm-up, before the search: each service's CPU with no load offered (the
    # cluster comparison: what a Redis node spends at no load, sharding cannot divide).
    idle_seconds: int = 0


# The burst offers this many times phase 2's best sustained rate.
BURST_FACTOR = 1.5

# The whole machine, every service under the compose file's own limits.
FULL = Plan(
    step_seconds=10,
    confirm_seconds=15,
    runs=3,
    start_rate=400,
    factor=2.0,
    max_search_steps=7,
    precision=1.1,
    pgbench_seconds=10,
    pgbench_clients=10,
    copy_seconds=5,
    copy_batch=5000,
    drain_seconds=20,
    settle_timeout=180,
)

# The scale model: each point starts its search near the rate predicted from the replica
# count before it, so a few short steps find it; the walls are low, so steps are cheap.
SCALE = Plan(
    step_seconds=10,
    confirm_seconds=15,
    runs=3,
    start_rate=150,
    factor=1.4,
    max_search_steps=6,
    precision=1.08,
    settle_timeout=120,
    confirm_attempts=3,
    confirm_step=0.93,
    max_replicas=7,
    burst_seconds=60,
)

QUICK = Plan(
    quick=True,
    # A cold first step that breaks is followed by one 2.5x lower: the smoke test still finds
    # a rate, and skipping the warm-up keeps `--quick` near 6 minutes.
    warm_up=False,
    step_seconds=3,
    confirm_seconds=4,
    runs=1,
    start_rate=300,
    factor=2.5,
    max_search_steps=3,
    precision=3.0,
    pgbench_seconds=3,
    pgbench_clients=4,
    copy_seconds=2,
    copy_batch=2000,
    drain_seconds=3,
    settle_timeout=60,
)

SCALE_QUICK = Plan(
    quick=True,
    warm_up=False,  # as QUICK: a cold first step that breaks is followed by a lower one
    step_seconds=3,
    confirm_seconds=3,
    runs=1,
    start_rate=100,
    factor=2.0,
    max_search_steps=2,
    precision=3.0,
    settle_timeout=60,
    max_replicas=2,
    burst_seconds=4,
)


def next_rate(
    plan: Plan, held: list[int], broke: list[int], start: int | None = None
) -> int | None:
    """The next rate to offer in the search, or None when it is done.

    Start at `start` (a prediction, say from the replica count before) or the plan's first
    rate; multiply while every step holds; once one breaks, bisect (geometrically) between
    the highest that held and the lowest that broke until they are `precision` apart.
    """
    if len(held) + len(broke) >= plan.max_search_steps:
        return None
    low = max(held, default=0)
    if not broke:
        if not held:
            return start or plan.start_rate
        rate = round(low * plan.factor)
        return rate if rate <= plan.max_rate else None
    high = min(broke)
    if low == 0:
        # Even the first rate broke the SLO: look one step below it.
        rate = round(high / plan.factor)
        return rate if rate >= 10 else None
    if high / low <= plan.precision:
        return None
    return round(math.sqrt(low * high))
