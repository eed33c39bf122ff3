"""The scale model's goals, read from the sweeps and the burst."""

from __future__ import annotations

from typing import Any

from lab.bench import _scale_goals


def _point(replicas: int, rate: int, wall: str, confirmed: bool = True) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "sustained_rate": rate,
        "limited_by": wall,
        "confirmed": confirmed,
    }


def test_scale_goals_read_the_sweeps_and_the_burst() -> None:
    scale: dict[str, Any] = {
        "phases": {
            "phase2": [_point(1, 300, "app"), _point(2, 560, "app"), _point(3, 600, "db")],
            "phase3": [_point(1, 290, "app"), _point(4, 1000, "redis")],
        },
        "burst": {
            "phase3": {"acknowledged_share": 1.0, "within_slo": True, "rows": 9, "acknowledged": 9}
        },
    }
    met = {g["goal"]: g["met"] for g in _scale_goals.goals(scale)}
    assert list(met.values()) == [True, True, True, True, True]
    scale["phases"]["phase2"][-1]["limited_by"] = "app"
    scale["burst"]["phase3"]["rows"] = 8
    met = {g["goal"]: g["met"] for g in _scale_goals.goals(scale)}
    assert list(met.values()) == [True, False, True, True, False]


def test_a_rate_that_was_not_confirmed_counts_toward_no_goal() -> None:
    """Phase 2 at two replicas 'did' 580/s at a p95 of 224 ms: that rate did not hold."""
    scale: dict[str, Any] = {
        "phases": {
            "phase2": [_point(1, 266, "app"), _point(2, 580, "app", confirmed=False)],
            "phase3": [_point(1, 400, "app")],
        },
    }
    goals = {g["goal"]: g for g in _scale_goals.goals(scale)}
    growth = goals["phase 2 at 2 replicas >= 1.7x phase 2 at 1 replica"]
    assert (growth["measured"], growth["met"]) == (None, None)
    best = goals["phase 3's best >= 1.5x phase 2's best (same database quota)"]
    assert best["measured"] == 400 / 266


def test_phase_4_must_double_phase_3_where_phase_3_stops_at_its_redis() -> None:
    """The comparison alone (`make bench PART=cluster`): only its goals."""
    cluster: dict[str, Any] = {
        "quotas": {"REDIS_CPUS": "0.04"},
        "phases": {
            "phase3": [_point(1, 300, "app"), _point(2, 420, "redis"), _point(3, 430, "redis")],
            "phase4": [
                _point(1, 280, "app"),
                _point(3, 860, "app"),
                _point(4, 900, "redis-node-3"),
            ],
            "phase4-grown": [_point(4, 1100, "redis-node-7")],
        },
    }
    goals = _scale_goals.goals({"cluster": cluster})
    assert [(g["measured"], g["met"]) for g in goals] == [
        ("redis", True),
        (900 / 430, True),
        (1100 / 900, True),
    ]
    cluster["phases"]["phase4"][-1]["confirmed"] = False  # 900/s did not hold: 860 is the best
    cluster["phases"]["phase3"][-1]["limited_by"] = "app"
    goals = _scale_goals.goals({"cluster": cluster})
    # Grown, phase 4 is compared at its own replica count: 900/s there did not hold.
    assert [(g["measured"], g["met"]) for g in goals] == [
        ("app", False),
        (860 / 430, True),
        (None, None),
    ]


def test_a_fourth_primary_must_add_what_one_more_replica_must() -> None:
    cluster: dict[str, Any] = {
        "quotas": {"REDIS_CPUS": "0.02"},
        "phases": {
            "phase3": [_point(1, 250, "redis")],
            "phase4": [_point(5, 400, "redis-node-1"), _point(6, 410, "redis-node-2")],
            "phase4-grown": [_point(6, 440, "redis-node-7")],
        },
    }
    (grown,) = [g for g in _scale_goals.goals({"cluster": cluster}) if "grown" in g["goal"]]
    assert grown["goal"] == "phase 4 grown to four primaries >= 1.1x its three (same app replicas)"
    assert (grown["measured"], grown["met"]) == (440 / 410, False)
    cluster["phases"]["phase4-grown"] = []  # growing failed: nothing to judge
    (grown,) = [g for g in _scale_goals.goals({"cluster": cluster}) if "grown" in g["goal"]]
    assert (grown["measured"], grown["met"]) == (None, None)
