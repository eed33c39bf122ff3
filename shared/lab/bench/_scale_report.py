"""The scale model's part of the results: its goals, and its Markdown section."""

from __future__ import annotations

from typing import Any

from lab.bench import _plan
from lab.bench._scale_plots import database_wall


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


def goals(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """What the scale model is there to show, each with its measured value."""
    p2, p3 = _points(scale, "phase2"), _points(scale, "phase3")
    burst = (scale.get("burst") or {}).get("phase3") or {}

    def goal(text: str, measured: Any, bound: Any, met: bool | None) -> dict[str, Any]:
        return {"goal": text, "measured": measured, "bound": bound, "met": met}

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


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


_POINT_COLUMNS = ("signups/s", "p95 ms", "limited by", "evidence", "k6 cores", "machine cores")


def markdown(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale_model")
    if not scale:
        return []
    plan = results["bench"]["scale_plan"]
    quotas = ", ".join(f"`{k}={v}`" for k, v in scale["quotas"].items())
    lines = [
        "## Scale model: each phase's wall",
        "",
        f"Every service under a small CPU quota ({quotas}; `shared/scale-model.env`), so that "
        "the quotas run out before the machine does. App replicas are added one at a time "
        f"until one more adds less than {plan['gain'] - 1:.0%}. Each rate: open-model search, "
        f"then the median of {plan['runs']} runs of {plan['confirm_seconds']} s. *Limited by*: "
        "the service closest to its quota at the lowest rate that broke the SLO, with the "
        "cgroup's CPU and throttling counters as evidence.",
        "",
        _row("phase x app replicas", *_POINT_COLUMNS),
        "| --- | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for phase, points in scale["phases"].items():
        for p in points:
            cells = point_cells(p)
            lines.append(_row(f"{phase} x{p['replicas']}", *(cells[c] for c in _POINT_COLUMNS)))
    for phase, error in (scale.get("errors") or {}).items():
        lines.append(f"| {phase} | failed: {error} ||||||")
    services = sorted(
        {s for points in scale["phases"].values() for p in points for s in p["cores"]}
    )
    lines += [
        "",
        "CPU milliseconds each service spent per acknowledged signup at the sustained rate "
        "(cgroup accounting over the runs; phase 3's includes the writer's work meanwhile):",
        "",
        "| phase x app replicas | " + " | ".join(f"{s} ms" for s in services) + " |",
        "| --- |" + " ---: |" * len(services),
    ]
    for phase, points in scale["phases"].items():
        for p in points:
            cells = point_cells(p)
            row = " | ".join(cells.get(f"{s} ms", "-") for s in services)
            lines.append(f"| {phase} x{p['replicas']} | {row} |")
    wall = database_wall(scale)
    if wall:
        lines += [
            "",
            f"PostgreSQL's wall: its quota ({scale['quotas']['DB_CPUS']} CPU) over its CPU per "
            f"phase-2 signup is {_n(wall)} signups/s.",
        ]
    bursts = {p: b for p, b in (scale.get("burst") or {}).items() if b}
    if bursts:
        lines += [
            "",
            f"### Burst: {_plan.BURST_FACTOR}x phase 2's best for {plan['burst_seconds']} s",
            "",
            "| burst | app replicas | rate | offered | acknowledged | p95 ms | within SLO "
            "| rows | peak backlog | written after the burst |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for phase, b in bursts.items():
            lines.append(_row(f"{phase} burst", *burst_cells(b).values()))
    lines += ["", "### Goals", "", "| goal | measured | met |", "| --- | ---: | --- |"]
    for g in scale["goals"]:
        c = goal_cells(g)
        met = "**no**" if c["met"] == "no" else c["met"]
        lines.append(f"| {g['goal']} | {c['measured']} | {met} |")
    return [*lines, ""]


# The cells of each table, one function each, in its columns' order: the docs' tests check
# quoted rows with them.
def point_cells(p: dict[str, Any]) -> dict[str, str]:
    flag = "" if p["confirmed"] else " (not confirmed)"
    return {
        "app replicas": str(p["replicas"]),
        "signups/s": f"{_n(p['sustained_rate'])}{flag}",
        "p95 ms": _n(p["latency_ms"]["p95"], 1),
        "limited by": p["limited_by"] or "-",
        "evidence": p["evidence"],
        "k6 cores": _n(p["k6_cores"], 2),
        "machine cores": _n(p["machine_cores"], 2),
        **{f"{s} ms": _n(v, 3) for s, v in p["cpu_ms_per_signup"].items()},
    }


def burst_cells(b: dict[str, Any]) -> dict[str, str]:
    return {
        "app replicas": str(b["replicas"]),
        "rate": f"{_n(b['rate'])}/s",
        "offered": _n(b["offered"]),
        "acknowledged": f"{_n(b['acknowledged'])} ({b['acknowledged_share']:.2%})",
        "p95 ms": _n(b["latency_ms"]["p95"], 1),
        "within SLO": "yes" if b["within_slo"] else "no",
        "rows": _n(b["rows"]),
        "peak backlog": _n(b["peak_backlog"]),
        "written after the burst": f"{b['drained_after_s']} s",
    }


def goal_cells(g: dict[str, Any]) -> dict[str, str]:
    return {
        "measured": _n(g["measured"], 0 if isinstance(g["measured"], int) else 3),
        "met": {True: "yes", False: "no", None: "not measured"}[g["met"]],
    }
