"""The scale model's Markdown section: the Redis nodes at no load."""

from __future__ import annotations

from typing import Any

from lab.bench import _scale_report


def _point(replicas: int, rate: int, cores: dict[str, float]) -> dict[str, Any]:
    return {"replicas": replicas, "sustained_rate": rate, "confirmed": True, "cores": cores}


def test_the_redis_nodes_at_no_load_are_set_against_the_sustained_rate() -> None:
    phase3 = _point(3, 264, {"app": 0.25, "redis": 0.0203})
    phase3 |= {"idle_cores": {"app": 0.002, "redis": 0.002}, "idle_seconds": 10}
    phase4 = _point(4, 294, {"redis-node": 0.093})
    nodes = {f"redis-node-{n}": 0.0035 if n <= 3 else 0.002 for n in range(1, 7)}
    phase4 |= {"idle_cores": {**nodes, "writer": 0.028}, "idle_seconds": 10}
    older = _point(2, 241, {"redis": 0.02})  # a run from before the reading: no row
    lines = _scale_report._idle_table({"phase3": [older, phase3], "phase4": [phase4]}, 0.02)
    assert "read for 10 s before the search" in lines[1]
    assert lines[-2] == "| phase3 x3 | 1 | 0.0020 | 0.0203 | 10% | redis: 10% of its quota |"
    assert lines[-1] == (
        "| phase4 x4 | 6 | 0.0165 | 0.0930 | 18% | redis-node-1: 18% of its quota |"
    )
    assert _scale_report._idle_table({"phase3": [older]}, 0.02) == []
