"""The panels that show each series' latest value: stat, gauge, bar gauge and pie chart."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Wedge
from matplotlib.ticker import FuncFormatter

from lab.report._series import Line
from lab.report._units import colour, fmt, threshold_colour
from lab.report.dashboards import Panel


def no_data(ax: Axes, text: str = "No data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#999999")
    ax.set_axis_off()


def stat(fig: Figure, ax: Axes, panel: Panel, data: list[Line], top: float) -> None:
    """Big numbers, one box per series, on their threshold colour; `top` is where the title
    block ends."""
    background = panel.raw.get("options", {}).get("colorMode") == "background"
    ax.set_axis_off()
    width = 1 / len(data)
    for i, line in enumerate(data):
        value = line.last()
        hue = threshold_colour(value, panel.steps)
        box = fig.add_axes((0.02 + i * width * 0.96, 0.05, width * 0.96 - 0.01, top - 0.07))
        box.set_facecolor(hue if background else "white")
        box.set_xticks([])
        box.set_yticks([])
        real = [(t, v) for t, v in zip(line.times, line.values, strict=True) if not math.isnan(v)]
        if len(real) > 1:
            spark = box.twinx()
            ys = [v for _, v in real]
            spark.fill_between(
                [t for t, _ in real], ys, color="white" if background else hue, alpha=0.25
            )
            # The sparkline takes the lower part of the box, under the number, as in Grafana.
            low, high = min(0.0, *ys), max(ys)
            spark.set_ylim(low, high + 2 * (high - low or 1))
            spark.set_axis_off()
        text = fmt(value, panel.unit, panel.defaults.get("decimals"))
        box.text(
            0.5,
            0.55,
            text,
            ha="center",
            va="center",
            fontsize=26,
            fontweight="bold",
            color="white" if background else hue,
            transform=box.transAxes,
            zorder=5,
        )
        box.text(
            0.5,
            0.15,
            line.name,
            ha="center",
            va="center",
            fontsize=10,
            color="white" if background else "#333333",
            transform=box.transAxes,
            zorder=5,
        )


def gauge(ax: Axes, panel: Panel, data: list[Line]) -> None:
    defaults, steps = panel.defaults, panel.steps
    low, high = float(defaults.get("min", 0)), float(defaults.get("max", 100))
    ax.set_axis_off()
    ax.set_aspect("equal")
    n = len(data)
    for i, line in enumerate(data):
        cx = (i - (n - 1) / 2) * 2.4
        edges = [low] + [s["value"] for s in steps[1:]] + [high]
        for j in range(len(edges) - 1):
            a, b = (180 - 180 * (e - low) / (high - low) for e in (edges[j], edges[j + 1]))
            ax.add_patch(Wedge((cx, 0), 1.08, b, a, width=0.06, color=colour(steps[j]["color"])))
        value = line.last()
        share = 0.0 if math.isnan(value) else min(max((value - low) / (high - low), 0), 1)
        ax.add_patch(
            Wedge(
                (cx, 0),
                1.0,
                180 - 180 * share,
                180,
                width=0.25,
                color=threshold_colour(value, panel.steps),
            )
        )
        ax.add_patch(Wedge((cx, 0), 1.0, 0, 180 - 180 * share, width=0.25, color="#EEEEEE"))
        ax.text(
            cx,
            0.2,
            fmt(value, panel.unit, panel.defaults.get("decimals")),
            ha="center",
            fontsize=20,
            fontweight="bold",
        )
        ax.text(cx, -0.25, line.name, ha="center", fontsize=10)
    ax.set_xlim(-1.2 - (n - 1) * 1.2, 1.2 + (n - 1) * 1.2)
    ax.set_ylim(-0.4, 1.15)


def bars(ax: Axes, panel: Panel, data: list[Line]) -> None:
    defaults, steps = panel.defaults, panel.steps
    values = [0.0 if math.isnan(line.last()) else line.last() for line in data]
    top = float(defaults.get("max", max([*values, 1])))
    continuous = defaults.get("color", {}).get("mode", "").startswith("continuous")
    hues = [
        plt.get_cmap("YlOrRd")(0.25 + 0.75 * v / top) if continuous else threshold_colour(v, steps)
        for v in values
    ]
    names = [line.name for line in data]
    ax.barh(names, [top] * len(values), color="#EEEEEE")
    ax.barh(names, values, color=hues)
    for y, v in enumerate(values):
        ax.text(
            top, y, f"  {fmt(v, panel.unit, defaults.get('decimals'))}", va="center", fontsize=10
        )
    ax.set_xlim(0, top * 1.25)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt(v, panel.unit)))
    ax.spines[["top", "right"]].set_visible(False)


def pie(ax: Axes, panel: Panel, data: list[Line]) -> None:
    slices = [(line, line.last()) for line in data if line.last() > 0]
    if not slices:
        no_data(ax, "No errors in this range")
        return
    total = sum(v for _, v in slices)
    ax.pie(
        [v for _, v in slices],
        colors=[line.colour for line, _ in slices],
        startangle=90,
        wedgeprops={"linewidth": 1, "edgecolor": "white"},
    )
    labels = [
        f"{line.name}: {fmt(v, panel.unit, 0)} ({100 * v / total:.1f}%)" for line, v in slices
    ]
    ax.legend(labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, frameon=False)
    ax.set_aspect("equal")
