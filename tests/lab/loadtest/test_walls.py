"""Which service limited a rate, and the evidence for it."""

from __future__ import annotations

import pytest

from lab.loadtest import _walls
from lab.loadtest._walls import Counters


def _counters(cpu: dict[str, float], throttled: dict[str, float]) -> Counters:
    return Counters(
        cpu_seconds=cpu,
        periods={s: 1000.0 for s in cpu},
        throttled_periods=throttled,
        throttled_seconds={s: t / 100 for s, t in throttled.items()},
        quota_cores={"app": 0.3, "db": 0.15},
    )


def test_the_wall_is_the_service_at_its_quota_with_its_counters_as_evidence() -> None:
    before = _counters({"app": 10.0, "db": 5.0}, {"app": 0.0, "db": 0.0})
    # Over 10 s: the app used 0.2 of its 0.3 cores, the database 0.145 of 0.15.
    after = _counters({"app": 12.0, "db": 6.45}, {"app": 100.0, "db": 700.0})
    load = _walls.service_load(before, after, 10.0)
    assert load["db"]["used"] == pytest.approx(0.967, abs=0.001)
    assert load["app"]["throttled_share"] is None  # periods did not advance in this fake
    wall = _walls.limiter(load, machine_cores=0.9, cores=2)
    assert wall["service"] == "db"
    assert "0.145 of its 0.15 cores" in wall["evidence"]


def test_without_a_service_at_its_quota_a_full_machine_is_named_else_nothing() -> None:
    load = {"app": {"cores": 0.1, "quota_cores": 0.3, "used": 0.33, "throttled_share": 0.0}}
    assert _walls.limiter(load, machine_cores=1.9, cores=2)["service"] == "machine"
    nothing = _walls.limiter(load, machine_cores=0.8, cores=2)
    assert nothing["service"] is None
    assert "busiest: app at 33%" in nothing["evidence"]
