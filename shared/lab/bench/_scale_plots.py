"""The scale model's pictures: each phase's wall against app replicas, where the machine's
CPU went at every measured point, and the burst over time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from lab.bench import _figure
from lab.bench._figure import save, stacked
from lab.bench._plots import measured

# The comparison's name for phase 4 grown to four primaries (eight nodes) before it is measured.
GROWN = "phase4-grown"
PHASE_STYLE = {
    "phase1": {"color": "tab:green", "marker": "*", "label": "phase 1 (one app)"},
    "phase2": {"color": "tab:orange", "marker": "o", "label": "phase 2 (replicas, PgBouncer)"},
    "phase3": {"color": "tab:blue", "marker": "s", "label": "phase 3 (Redis stream, writer)"},
    "phase4": {"color": "tab:red", "marker": "D", "label": "phase 4 (Redis Cluster)"},
}
SERVICE_COLORS = {
    "app": "tab:blue",
    "db": "tab:red",
    "nginx": "tab:green",
    "pgbouncer": "tab:brown",
    "redis": "tab:purple",
    "writer": "tab:olive",
    "k6": "tab:gray",
    "other": "lightgray",
}


def service_wall(points: list[dict[str, Any]], service: str) -> float | None:
    """Signups/s at which `service` would use its whole quota: the quota over its CPU per
    signup at the highest sustained rate of these points (a service's cost per signup falls
    as its load rises: more requests per wake-up). An upper bound: latency breaks the SLO a
    little before a service reaches 100 % of its quota."""
    points = [p for p in points if p["cpu_ms_per_signup"].get(service)]
    if not points:
        return None
    top = max(points, key=lambda p: p["sustained_rate"])
    quota = top["quota_cores"].get(service)
    return float(quota / (top["cpu_ms_per_signup"][service] / 1000)) if quota else None


def database_wall(scale: dict[str, Any]) -> float | None:
    """Phase 2's PostgreSQL: the wall no number of app replicas moves."""
    return service_wall((scale.get("phases") or {}).get("phase2") or [], "db")


@dataclass(frozen=True)
class Line:
    """One sweep on the replica plot, and the one-Redis wall to draw beside it, if any."""

    points: list[dict[str, Any]]
    style: dict[str, Any]
    wall: tuple[str, str] | None = None  # (service, its name in the label)


def lines(scale: dict[str, Any]) -> list[Line]:
    """Phases 1-3 at the profile's quotas, then phase 3 and phase 4 at the comparison's
    per-node Redis quota (dotted: the same phase 3 on a smaller Redis)."""
    found = []
    walls = {"phase2": ("db", "phase 2's PostgreSQL"), "phase3": ("redis", "phase 3's Redis")}
    for phase, points in (scale.get("phases") or {}).items():
        found.append(Line(points, PHASE_STYLE[phase], walls.get(phase)))
    cluster = scale.get("cluster")
    if cluster:
        redis = cluster["quotas"]["REDIS_CPUS"]
        small: dict[str, dict[str, Any]] = {
            "phase3": {
                **PHASE_STYLE["phase3"],
                "linestyle": ":",
                "label": f"phase 3, its one Redis at {redis} CPU",
            },
            "phase4": {
                **PHASE_STYLE["phase4"],
                "label": f"phase 4, each of its Redis nodes at {redis} CPU",
            },
            GROWN: {
                **PHASE_STYLE["phase4"],
                "marker": "*",
                "markersize": 14,
                "linestyle": "none",
                "label": "phase 4 grown to four primaries",
                # Under its label sits phase 4's own point at the same replicas.
                "label_below": True,
            },
        }
        for phase, points in cluster["phases"].items():
            # The label says the quota: "phase 3's Redis at its whole quota (0.04 CPU)".
            wall = ("redis", "phase 3's Redis") if phase == "phase3" else None
            found.append(Line(points, small[phase], wall))
    return [line for line in found if line.points]


def replicas(results: dict[str, Any], path: Path) -> None:
    """Sustained signups/s against app replicas, one line per phase, each point's wall named."""
    scale = results["scale_model"]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    drawn = lines(scale)
    top = max((p["replicas"] for line in drawn for p in line.points), default=1)
    hollow_label = "not confirmed (most runs at it broke the SLO)"  # in the legend once
    for line in drawn:
        style, points = line.style, line.points
        one = len(points) == 1 and style is PHASE_STYLE["phase1"]
        # Phase 1's one point sits where phase 2's and 3's first ones do: nudge it left.
        xs = [p["replicas"] - (0.06 if one else 0) for p in points]
        ys = [p["sustained_rate"] for p in points]
        ax.plot(
            xs,
            ys,
            marker=style["marker"],
            color=style["color"],
            label=style["label"],
            linestyle=style.get("linestyle", "-"),
            markersize=style.get("markersize", 12 if one else 7),
            linewidth=2,
        )
        hollow = [(x, y) for x, y, p in zip(xs, ys, points, strict=True) if not p["confirmed"]]
        if hollow:
            ax.scatter(
                [x for x, _ in hollow],
                [y for _, y in hollow],
                s=90,
                facecolors="white",
                edgecolors=style["color"],
                zorder=3,
                label=hollow_label,
            )
            hollow_label = "_nolegend_"
        for x, y, point in zip(xs, ys, points, strict=True):
            ax.annotate(
                point["limited_by"] or "?",
                (x, y),
                textcoords="offset points",
                xytext=(0, -15 if style.get("label_below", style is PHASE_STYLE["phase2"]) else 9),
                ha="center",
                fontsize=8,
                color=style["color"],
            )
        wall = service_wall(points, line.wall[0]) if line.wall else None
        if line.wall and wall:
            service, name = line.wall
            quota = next(p["quota_cores"][service] for p in points if service in p["quota_cores"])
            ax.axhline(wall, color=style["color"], linestyle="--", linewidth=1)
            ax.text(
                top,
                wall,
                f"{name} at its whole quota ({quota:g} CPU): {wall:,.0f}/s",
                color=style["color"],
                ha="right",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(1, top + 1))
    ax.set_xlabel("app replicas (each one worker under its own CPU quota)")
    ax.set_ylabel("signups/s sustained within the SLO")
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.08)
    ax.set_title(
        "Scale model: where each phase stops (label: the service at its CPU quota)", fontsize=11
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    save(fig, path)


def _stack(ax: Axes, bars: list[tuple[str, dict[str, float], float]], cores: int) -> None:
    """One stacked bar per measurement: cores per service, k6, and the rest of the machine."""
    used = sorted({s for _, parts, _ in bars for s in parts}, key=list(SERVICE_COLORS).index)
    layers = {s: [parts.get(s, 0.0) for _, parts, _ in bars] for s in used}
    names = [label for label, _, _ in bars]
    stacked(ax, names, {s: h for s, h in layers.items() if any(h)}, SERVICE_COLORS)
    ax.axhline(cores, color="black", linestyle="--", linewidth=1)
    ax.text(len(bars) - 0.5, cores, f"{cores} cores", ha="right", va="bottom", fontsize=8)
    ax.set_ylim(0, cores * 1.15)
    ax.set_ylabel("CPU cores used")
    ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.legend(loc="upper left", fontsize=7, ncol=4)


def _parts(
    cores: dict[str, float | None], k6: float | None, machine: float | None
) -> dict[str, float]:
    parts: dict[str, float] = {}
    for service, value in cores.items():
        # Phase 4's nodes are its Redis: one colour for Redis in every phase.
        name = "redis" if service == "redis-node" else service
        if value and name in SERVICE_COLORS:
            parts[name] = parts.get(name, 0.0) + float(value)
    parts["k6"] = float(k6 or 0.0)
    if machine is not None:
        parts["other"] = max(0.0, machine - sum(parts.values()))
    return parts


def sweeps(scale: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every sweep by name: the comparison's carry the Redis quota they ran at."""
    found = list((scale.get("phases") or {}).items())
    cluster = scale.get("cluster") or {}
    redis = (cluster.get("quotas") or {}).get("REDIS_CPUS")
    found += [(f"{p} (redis {redis})", pts) for p, pts in (cluster.get("phases") or {}).items()]
    return found


def machine(results: dict[str, Any], path: Path) -> None:
    """The machine's busy cores at each sustained rate: services, k6, everything else."""
    cores = results["bench"].get("cpu_count") or os.cpu_count() or 1
    scale_bars: list[tuple[str, dict[str, float], float]] = [
        (
            f"{phase} x{p['replicas']}",
            _parts(p["cores"], p.get("k6_cores"), p.get("machine_cores")),
            p["sustained_rate"],
        )
        for phase, points in sweeps(results.get("scale_model") or {})
        for p in points
    ]
    whole_bars: list[tuple[str, dict[str, float], float]] = []
    for name, target in measured(results).items():
        runs = target["runs"]
        if not runs or "load" not in runs[0]:
            continue
        middle = runs[len(runs) // 2]
        service_cores = {s: v["cores"] for s, v in middle["load"].items()}
        whole_bars.append(
            (name, _parts(service_cores, middle.get("k6_cores"), middle.get("machine_cores")), 0)
        )
    panels = [(b, t) for b, t in ((scale_bars, "scale model"), (whole_bars, "whole machine")) if b]
    if not panels:
        return
    widths = [max(3, len(b)) for b, _ in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 + 0.55 * sum(widths), 5), gridspec_kw={"width_ratios": widths}
    )
    axes_list = list(axes) if len(panels) > 1 else [axes]
    for ax, (bars, title) in zip(axes_list, panels, strict=True):
        _stack(ax, bars, cores)
        ax.set_title(f"{title}: CPU at each sustained rate", fontsize=10)
    save(fig, path)


def burst(results: dict[str, Any], path: Path) -> None:
    """Per phase (a column each): offered and acknowledged signups/s above; below, the rows
    written and the stream's backlog, each on its own scale (thousands against hundreds)."""
    bursts = {p: b for p, b in results["scale_model"].get("burst", {}).items() if b}
    if not bursts:
        return
    fig, axes = plt.subplots(
        2, len(bursts), figsize=(6.5 * len(bursts), 7), squeeze=False, sharex="col"
    )
    for column, (phase, data) in enumerate(bursts.items()):
        timeline = data["timeline"]
        t = [s["t"] for s in timeline]
        top, bottom = axes[0, column], axes[1, column]
        top.step(t, [s["offered"] for s in timeline], where="post", color="gray", label="offered")
        top.plot(t, [s["acknowledged"] for s in timeline], color="tab:blue", label="acknowledged")
        top.set_ylabel("signups/s")
        top.set_ylim(bottom=0)
        top.legend(loc="lower center", fontsize=8)
        verdict = "within the SLO" if data["within_slo"] else "SLO broken"
        top.set_title(
            f"{phase}, {data['replicas']} app replicas: "
            f"{data['rate']:,}/s for {data['seconds']} s\n"
            f"{data['acknowledged_share']:.1%} acknowledged, p95 "
            f"{data['latency_ms']['p95'] or 0:,.0f} ms: {verdict}",
            fontsize=10,
        )
        bottom.plot(t, [s.get("rows") or 0 for s in timeline], color="tab:green", label="rows")
        bottom.set_ylabel("rows written since the burst began")
        bottom.set_ylim(bottom=0)
        bottom.set_xlabel("seconds since the burst began")
        backlog = [s.get("backlog") or 0 for s in timeline]
        if any(backlog):
            right = bottom.twinx()
            right.plot(t, backlog, color="tab:red", label="backlog")
            right.set_ylabel("signups waiting in the stream", color="tab:red")
            right.set_ylim(bottom=0)
            lines, labels = bottom.get_legend_handles_labels()
            more, more_labels = right.get_legend_handles_labels()
            bottom.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
        else:
            bottom.legend(loc="upper left", fontsize=8)
    save(fig, path)


SCALE_PICTURES: list[tuple[str, str, _figure.Painter]] = [
    ("scale model: sustained signups/s against app replicas", "replicas", replicas),
    ("scale model: the burst over time", "burst", burst),
]


def draw(results: dict[str, Any], out: Path, stem: str) -> dict[str, str]:
    """{title: file name} of the pictures drawn: the machine's CPU also without the scale model."""
    painters = SCALE_PICTURES if results.get("scale_model") else []
    machine_cpu = ("the machine's CPU at each sustained rate", "machine", machine)
    return _figure.draw(results, out, stem, [*painters, machine_cpu])
