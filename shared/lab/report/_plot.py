"""Draw one Grafana panel with matplotlib: what `make report` writes instead of screenshots.

Each Grafana panel type the dashboards use gets its closest picture: timeseries as lines
(stacked where the panel stacks), stat as big numbers on their threshold colour, gauge as a
half dial, bargauge as horizontal bars, piechart as a pie (those four, which show each series'
latest value, are in _plot_values). Units, thresholds, fixed colours (field overrides) and
legends come from the panel's JSON, so the PNG reads like the panel. Written by hand: no
library renders Grafana panel JSON without Grafana.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from lab.report._plot_values import bars, gauge, no_data, pie, stat
from lab.report._promapi import Series
from lab.report._series import Line
from lab.report._units import colour, fmt
from lab.report.dashboards import Panel, legend

# Grafana's classic palette, for series without a fixed colour.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9"]
PALETTE += ["#705DA0", "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C"]
# On per-service resource panels, a line that never reaches this share of the panel's top is
# left out (and named below it).
FAINT = 0.05
# histogram_quantile() interpolates inside a bucket: where the answer is a bucket's bound, the
# truth is only "somewhere in that bucket".
BUCKETS_NOTE = (
    "quantiles estimated from histogram buckets: a flat line on a bucket bound means "
    "somewhere in that bucket, not that value (bounds: docs/metrics.md)"
)


def _overrides(panel: Panel, name: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for override in panel.raw.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        pattern = matcher.get("options", "")
        if (matcher.get("id") == "byRegexp" and re.search(pattern, name)) or (
            matcher.get("id") == "byName" and pattern == name
        ):
            props.update({p["id"]: p["value"] for p in override.get("properties", [])})
    return props


def lines(panel: Panel, results: Sequence[tuple[str, Sequence[Series]]]) -> list[Line]:
    """(legend format, series) per query -> named, coloured lines with their overrides."""
    out: list[Line] = []
    for template, series_list in results:
        for series in series_list:
            name = legend(template, series.labels) or panel.title
            props = _overrides(panel, name)
            fixed = props.get("color", {}).get("fixedColor")
            hue = colour(fixed) if fixed else PALETTE[len(out) % len(PALETTE)]
            out.append(Line(name, series.times, series.values, hue, props))
    return out


def _figure(size: tuple[float, float], title: str, subtitle: str) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=size, dpi=100)
    # Title and subtitle a fixed distance from the top, whatever the figure's height.
    fig.text(0.01, 1 - 0.12 / size[1], title, fontsize=13, fontweight="bold", va="top")
    fig.text(0.01, 1 - 0.40 / size[1], subtitle, fontsize=8, color="#666666", va="top")
    return fig, ax


def _top(fig: Figure) -> float:
    """Where the plotting area may start, below the title block."""
    return float(1 - 0.75 / fig.get_size_inches()[1])


def _times(values: Sequence[float]) -> list[float]:
    """Unix seconds as matplotlib date numbers (days since its 1970 epoch)."""
    return [t / 86400.0 for t in values]


def _formatter(unit: str) -> FuncFormatter:
    return FuncFormatter(lambda v, _p: fmt(v, unit))


def faint(data: list[Line]) -> list[Line]:
    """Left-axis lines that never reach FAINT of the panel's top. Used on the per-service
    resource panels (cAdvisor's container_* series) only: there an exporter's CPU beside the
    app's is flat at zero and only crowds the legend. On every other panel a small line is
    the point (errors beside successes, p50 beside p99) and is always drawn. When every line
    is zero, that is the answer, and nothing is left out."""
    left = [line for line in data if line.props.get("custom.axisPlacement") != "right"]
    peaks = {
        id(line): max((abs(v) for v in line.values if not math.isnan(v)), default=0.0)
        for line in left
    }
    top = max(peaks.values(), default=0.0)
    return [line for line in left if peaks[id(line)] < FAINT * top] if top > 0 else []


def _timeseries(
    fig: Figure, ax: Axes, panel: Panel, data: list[Line], window: tuple[float, float]
) -> None:
    custom = panel.defaults.get("custom", {})
    per_service = bool(panel.queries) and all("container_" in q.expr for q in panel.queries)
    left_out = faint(data) if per_service else []
    if left_out:
        data = [line for line in data if all(line is not out for out in left_out)]
        names = ", ".join(line.name for line in left_out)
        fig.text(
            0.01,
            0.01,
            f"not drawn, under {FAINT:.0%} of the top line: {names}",
            fontsize=7,
            color="#666666",
        )
    right, drawn = _draw_lines(ax, data, panel.unit, custom.get("stacking", {}).get("mode"))
    ax.set_xlim(window[0] / 86400.0, window[1] / 86400.0)
    for axis, values in ((ax, drawn["left"]), (right, drawn["right"])):
        real = [y for y in values if not math.isnan(y)]
        if axis is not None and real and min(real) >= 0:
            # From zero, with headroom so a flat line at the maximum is not hidden in the frame;
            # all zeros (nothing waiting, no errors) still get a readable axis.
            axis.set_ylim(0, max(real) * 1.1 if max(real) > 0 else 1.0)
    # After the axis limits: a threshold far above the data is not drawn (nor squashes it).
    if custom.get("thresholdsStyle", {}).get("mode", "off") != "off":
        for step in panel.steps[1:]:
            ax.axhline(step["value"], color=colour(step["color"]), ls="--", lw=1, alpha=0.8)
    ax.yaxis.set_major_formatter(_formatter(panel.unit))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time (UTC)", fontsize=8, color="#666666")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        columns = min(4, len(labels))
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18),
            fontsize=8,
            ncol=columns,
            frameon=False,
        )


def _draw_lines(
    ax: Axes, data: list[Line], unit: str, stacking: str | None
) -> tuple[Axes | None, dict[str, list[float]]]:
    """Plot every line (stacked where the panel or its override says), a right axis for
    series overridden to it; returns that axis and the values drawn on each side."""
    base: dict[float, float] = {}
    right: Axes | None = None
    drawn: dict[str, list[float]] = {"left": [], "right": []}
    for line in data:
        target, side = ax, "left"
        if line.props.get("custom.axisPlacement") == "right":
            right = right or ax.twinx()
            target, side = right, "right"
            target.yaxis.set_major_formatter(_formatter(str(line.props.get("unit", unit))))
        mode = line.props.get("custom.stacking", {}).get("mode") or stacking
        dash = "--" if line.props.get("custom.lineStyle", {}).get("fill") == "dash" else "-"
        values = line.values
        if mode == "normal":
            low = [base.get(t, 0.0) for t in line.times]
            values = [lo + (0.0 if math.isnan(v) else v) for lo, v in zip(low, values, strict=True)]
            base.update(zip(line.times, values, strict=True))
            target.fill_between(
                _times(line.times), low, values, color=line.colour, alpha=0.35, lw=0
            )
        target.plot(_times(line.times), values, dash, color=line.colour, lw=1.8, label=line.name)
        drawn[side] += values
    return right, drawn


def draw(
    panel: Panel, data: list[Line], window: tuple[float, float], path: Path, subtitle: str
) -> None:
    sizes = {
        "stat": (6.0, 3.0),
        "gauge": (6.0, 3.6),
        "piechart": (9.0, 4.5),
        "bargauge": (9.0, 4.5),
    }
    if any("histogram_quantile" in q.expr for q in panel.queries):
        subtitle += f"\n{BUCKETS_NOTE}"
    fig, ax = _figure(sizes.get(panel.type, (11.0, 4.6)), panel.title, subtitle)
    try:
        if not data or not any(not math.isnan(v) for line in data for v in line.values):
            no_data(ax)
        elif panel.type == "stat":
            stat(fig, ax, panel, data, _top(fig))
        elif panel.type == "gauge":
            gauge(ax, panel, data)
        elif panel.type == "bargauge":
            bars(ax, panel, data)
        elif panel.type == "piechart":
            pie(ax, panel, data)
        else:
            _timeseries(fig, ax, panel, data, window)
        if panel.type == "timeseries":
            fig.subplots_adjust(top=_top(fig), bottom=0.3, left=0.08, right=0.92)
        elif panel.type != "stat":
            left = 0.25 if panel.type == "bargauge" else 0.05
            fig.subplots_adjust(top=_top(fig), bottom=0.1, left=left)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
