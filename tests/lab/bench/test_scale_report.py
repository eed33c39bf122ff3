"""The scale model's goals, read from the sweeps and the burst."""

from __future__ import annotations

from typing import Any

from lab.bench import _scale_report


def _point(replicas: int, rate: int, wall: str) -> dict[str, Any]:
    return {"replicas": replicas, "sustained_rate": rate, "limited_by": wall}


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
    met = {g["goal"]: g["met"] for g in _scale_report.goals(scale)}
    assert list(met.values()) == [True, True, True, True, True]
    scale["phases"]["phase2"][-1]["limited_by"] = "app"
    scale["burst"]["phase3"]["rows"] = 8
    met = {g["goal"]: g["met"] for g in _scale_report.goals(scale)}
    assert list(met.values()) == [True, False, True, True, False]
