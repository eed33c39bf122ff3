"""The scale model's Markdown section (its goals are `_scale_goals`)."""

from __future__ import annotations

from typing import Any

from lab.bench import _disturbance, _plan, _reproduce
from lab.bench._scale_plots import database_wall, sweeps


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


_POINT_COLUMNS = (
    "signups/s",
    "p95 ms",
    "limited by",
    "evidence",
    "k6 cores",
    "machine cores",
    "machine slowdown",
)


def _points_table(by_phase: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        _row("phase x app replicas", *_POINT_COLUMNS),
        "| --- |" + " ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for phase, points in by_phase.items():
        for p in points:
            cells = point_cells(p)
            lines.append(_row(f"{phase} x{p['replicas']}", *(cells[c] for c in _POINT_COLUMNS)))
    return lines


def _cpu_table(by_phase: dict[str, list[dict[str, Any]]], what: str) -> list[str]:
    services = sorted({s for points in by_phase.values() for p in points for s in p["cores"]})
    lines = [
        "",
        "CPU milliseconds each service spent per acknowledged signup at the sustained rate "
        f"{what}:",
        "",
        "| phase x app replicas | " + " | ".join(f"{s} ms" for s in services) + " |",
        "| --- |" + " ---: |" * len(services),
    ]
    for phase, points in by_phase.items():
        for p in points:
            cells = point_cells(p)
            row = " | ".join(cells.get(f"{s} ms", "-") for s in services)
            lines.append(f"| {phase} x{p['replicas']} | {row} |")
    return lines


_IDLE_COLUMNS = (
    "Redis nodes",
    "no load, cores",
    "at the sustained rate, cores",
    "share spent at no load",
    "most at no load",
)


def idle_cells(point: dict[str, Any], quota: float) -> dict[str, str]:
    """A point's Redis nodes with no load offered against the point's sustained rate (none
    for a run from before they were read)."""
    idle = {s: c for s, c in (point.get("idle_cores") or {}).items() if is_redis(s)}
    busy = sum(c for s, c in point["cores"].items() if is_redis(s))
    if not idle or not busy:
        return {}
    top = max(idle, key=lambda s: idle[s])
    return dict(
        zip(
            _IDLE_COLUMNS,
            (
                str(len(idle)),
                f"{sum(idle.values()):.4f}",
                f"{busy:.4f}",
                f"{sum(idle.values()) / busy:.0%}",
                f"{top}: {idle[top] / quota:.0%} of its quota",
            ),
            strict=True,
        )
    )


def _idle_table(by_phase: dict[str, list[dict[str, Any]]], quota: float) -> list[str]:
    """What the Redis nodes spent with no load offered against what they spent at the point's
    sustained rate: the share sharding cannot divide."""
    rows, seconds = [], 0
    for phase, points in by_phase.items():
        for p in points:
            cells = idle_cells(p, quota)
            if cells:
                seconds = p.get("idle_seconds") or seconds
                rows.append(_row(f"{phase} x{p['replicas']}", *cells.values()))
    if not rows:
        return []
    return [
        "",
        "CPU the Redis nodes spent with no load offered (read for "
        f"{seconds} s before the search, every node together), against what they "
        "spent at the sustained rate:",
        "",
        _row("phase x app replicas", *_IDLE_COLUMNS),
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *rows,
    ]


def is_redis(service: str) -> bool:
    """Phase 3's Redis or one of phase 4's nodes."""
    return service == "redis" or service.startswith("redis-node")


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
        "cgroup's CPU and throttling counters as evidence (each Redis Cluster node on its own). "
        "*Machine slowdown*: " + disturbance_note(scale),
        "",
    ]
    phases = scale.get("phases") or {}
    if phases:
        lines += _points_table(phases)
    # A list, not rows: a failed comparison sweep has no table of its own to sit in.
    lines += [
        f"- **{label} failed**: {error}" for label, error in (scale.get("errors") or {}).items()
    ]
    if phases:
        lines += _cpu_table(
            phases,
            "(cgroup accounting over the runs; phase 3's includes the writer's work meanwhile)",
        )
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
    cluster = scale.get("cluster")
    if cluster:
        redis = cluster["quotas"]["REDIS_CPUS"]
        lines += [
            "",
            f"### Past one Redis: phase 3 and phase 4, every Redis node at {redis} CPU",
            "",
            f"The same quotas, but every Redis node at `REDIS_CPUS={redis}` (the profile's "
            "`CLUSTER_REDIS_CPUS`): low enough that phase 3's one Redis is its wall while the "
            "app replicas phase 4 needs past it still fit on the machine. Phase 4 runs three "
            "primaries, each with a replica, every node under that quota. Then `phase4-grown` "
            "is phase 4 at the app replicas of its best point, its cluster grown by a fourth "
            "primary and its replica before the search (`make cluster-grow`).",
            "",
            *_points_table(cluster["phases"]),
            *_cpu_table(
                cluster["phases"],
                "(`redis-node`: every node, primaries and replicas, together: six, eight grown)",
            ),
            *_idle_table(cluster["phases"], float(redis)),
        ]
    lines += _reproduce.markdown(scale.get("reproduction"))
    lines += ["", "### Goals", "", "| goal | measured | met |", "| --- | ---: | --- |"]
    for g in scale["goals"]:
        c = goal_cells(g)
        met = "**no**" if c["met"] == "no" else c["met"]
        lines.append(f"| {g['goal']} | {c['measured']} | {met} |")
    return [*lines, ""]


def disturbance_note(scale: dict[str, Any]) -> str:
    """What the machine itself did: how the probe is read, and which points it disturbed."""
    quiet = scale.get("machine_quiet")
    if not quiet:
        return "not recorded in this run."
    points = [
        (f"{phase} x{p['replicas']}", p["machine"])
        for phase, pts in sweeps(scale)
        for p in pts
        if p.get("machine")
    ]
    disturbed = [(name, m) for name, m in points if m.get("disturbed")]
    text = (
        f"the median CPU time of a fixed probe (the same hash of 1 MiB, every "
        f"{_disturbance.PERIOD} s) during the runs, over its {quiet['probe_ms']:.2f} ms on the "
        "quiet machine before the first point, and the share of CPU time the hypervisor "
        f"stole. A point whose probe ran more than {_disturbance.DISTURBED - 1:.0%} slower, or "
        f"that lost more than {_disturbance.STEAL_DISTURBED:.0%} to steal, was measured on a "
        "disturbed machine: "
    )
    if not disturbed:
        return text + f"none of the {len(points)} points was."
    named = ", ".join(f"{name} ({machine_cell(m)})" for name, m in disturbed)
    return text + f"{len(disturbed)} of {len(points)} were: {named}."


def machine_cell(m: dict[str, Any] | None) -> str:
    if not m or m.get("slowdown") is None:
        return "-"
    steal = m.get("steal_share") or 0.0
    flag = " **disturbed**" if m.get("disturbed") else ""
    return f"{m['slowdown']:.2f}x, steal {steal:.1%}{flag}"


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
        "machine slowdown": machine_cell(p.get("machine")),
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
