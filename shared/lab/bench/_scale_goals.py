"""The scale model's goals: what it is there to show, each read from the sweeps and the burst
with its measured value. A goal a rate that did not hold would decide reads as not measured."""

from __future__ import annotations

from typing import Any

from lab.bench import _plan
from lab.bench._scale_plots import GROWN


def _points(scale: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    return list(scale["phases"].get(phase) or [])


# A rate whose confirming runs mostly broke the SLO did not hold: it counts toward no ratio
# and no goal (a goal it would decide reads as not measured).
def _rate(points: list[dict[str, Any]], replicas: int) -> float | None:
    return next(
        (p["sustained_rate"] for p in points if p["replicas"] == replicas and p["confirmed"]),
        None,
    )


def _best(points: list[dict[str, Any]]) -> int | None:
    return max((p["sustained_rate"] for p in points if p["confirmed"]), default=None)


def goal(text: str, measured: Any, bound: Any, met: bool | None) -> dict[str, Any]:
    return {"goal": text, "measured": measured, "bound": bound, "met": met}


def goals(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """What the scale model is there to show, each with its measured value."""
    found = phase_goals(scale) if scale.get("phases") else []
    cluster = scale.get("cluster")
    return found + (cluster_goals(cluster) if cluster else [])


# Growing phase 4 by a primary counts as raising its rate when it adds what one more app
# replica must add for a sweep to go on.
GROWN_GAIN = _plan.SCALE.gain


def cluster_goals(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """Phase 3 stops at its one Redis; phase 4 moves that wall, at the same quota per node;
    a fourth primary moves phase 4's."""
    p3, p4 = _points(cluster, "phase3"), _points(cluster, "phase4")
    redis = cluster["quotas"]["REDIS_CPUS"]
    wall = p3[-1]["limited_by"] if p3 else None
    best3, best4 = _best(p3), _best(p4)
    ratio = best4 / best3 if best3 and best4 else None
    four = next((p for p in _points(cluster, GROWN) if p["confirmed"]), None)
    three = _rate(p4, four["replicas"]) if four else None
    rise = four["sustained_rate"] / three if four and three else None
    return [
        goal(
            f"phase 3 stops growing at its Redis's quota (every Redis node at {redis} CPU)",
            wall,
            "redis",
            None if wall is None and not p3 else wall == "redis",
        ),
        goal(
            "phase 4's best >= 2x phase 3's best (same Redis quota per node)",
            ratio,
            2.0,
            None if ratio is None else ratio >= 2.0,
        ),
        goal(
            f"phase 4 grown to four primaries >= {GROWN_GAIN}x its three (same app replicas)",
            rise,
            GROWN_GAIN,
            None if rise is None else rise >= GROWN_GAIN,
        ),
    ]


def phase_goals(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """Phases 1-3 at the profile's quotas, and the bursts."""
    p2, p3 = _points(scale, "phase2"), _points(scale, "phase3")
    burst = (scale.get("burst") or {}).get("phase3") or {}

    one, two = _rate(p2, 1), _rate(p2, 2)
    growth = two / one if one and two else None
    best2, best3 = _best(p2), _best(p3)
    ratio = best3 / best2 if best2 and best3 else None
    last_wall = p2[-1]["limited_by"] if p2 else None
    share = burst.get("acknowledged_share")
    return [
        goal(
            "phase 2 at 2 replicas >= 1.7x phase 2 at 1 replica",
            growth,
            1.7,
            None if growth is None else growth >= 1.7,
        ),
        goal(
            "phase 2 stops growing at the database's quota",
            last_wall,
            "db",
            None if last_wall is None and not p2 else last_wall == "db",
        ),
        goal(
            "phase 3's best >= 1.5x phase 2's best (same database quota)",
            ratio,
            1.5,
            None if ratio is None else ratio >= 1.5,
        ),
        goal(
            "burst: phase 3 acknowledges >= 99.9 % of arrivals within the SLO",
            share,
            0.999,
            None if share is None else share >= 0.999 and bool(burst.get("within_slo")),
        ),
        goal(
            "burst: every signup phase 3 acknowledged is exactly one row",
            burst.get("rows"),
            burst.get("acknowledged"),
            None if not burst else burst["rows"] == burst["acknowledged"],
        ),
    ]
