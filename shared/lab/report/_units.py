"""Values as Grafana shows them: its units, named colours and threshold steps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Grafana's named colours, so the PNGs match the dashboards.
COLOURS = {
    "green": "#73BF69",
    "yellow": "#FADE2A",
    "red": "#F2495C",
    "orange": "#FF9830",
    "blue": "#5794F2",
    "purple": "#B877D9",
}


def colour(name: str) -> str:
    return COLOURS.get(name, name)


def _si(value: float, suffix: str = "", decimals: int | None = None) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{1 if decimals is None else decimals}f}{prefix}{suffix}"
    if decimals is None:
        decimals = 0 if float(value).is_integer() else (2 if abs(value) < 10 else 1)
    return f"{value:.{decimals}f}{suffix}"


def _bytes(value: float, suffix: str = "") -> str:
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}{suffix}"
    return f"{value:.0f} B{suffix}"


def fmt(value: float, unit: str, decimals: int | None = None) -> str:
    """A value as Grafana shows it in `unit`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "percent":
        return f"{value:.{1 if decimals is None else decimals}f}%"
    if unit == "s":
        if value == 0:
            return "0 s"
        if abs(value) < 1:
            return f"{value * 1000:.{1 if decimals is None else max(decimals - 3, 0)}f} ms"
        return f"{value:.{2 if decimals is None else decimals}f} s"
    if unit == "bytes":
        return _bytes(value)
    if unit == "Bps":
        return _bytes(value, "/s")
    suffixes = {"reqps": " req/s", "reqpm": " req/min", "rowsps": " rows/s"}
    return _si(value, suffixes.get(unit, ""), decimals)


def threshold_colour(value: float, steps: Sequence[Mapping[str, Any]]) -> str:
    chosen = steps[0]["color"] if steps else "green"
    for step in steps[1:]:
        if not math.isnan(value) and value >= step["value"]:
            chosen = step["color"]
    return colour(chosen)
