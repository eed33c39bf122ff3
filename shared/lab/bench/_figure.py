"""What every bench picture shares: files only, the same resolution, bars stacked service on
service, and one file per picture named after the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

# Files only: no display on a server or in CI. Set when the plot modules import this one,
# before any figure exists, which is all that counts: pyplot picks its backend lazily.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

Painter = Callable[[dict[str, Any], Path], None]


def save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def stacked(
    ax: Axes, names: list[str], layers: dict[str, list[float]], colors: dict[str, str] | None = None
) -> list[float]:
    """A bar per name, each layer (a service) on the ones before it; returns the tops."""
    tops = [0.0] * len(names)
    for label, values in layers.items():
        ax.bar(names, values, bottom=tops, label=label, color=(colors or {}).get(label))
        tops = [b + v for b, v in zip(tops, values, strict=True)]
    return tops


def draw(
    results: dict[str, Any], out: Path, stem: str, painters: list[tuple[str, str, Painter]]
) -> dict[str, str]:
    """{title: file name} of the pictures drawn: a painter with nothing to show draws none."""
    drawn: dict[str, str] = {}
    for title, kind, painter in painters:
        name = f"{stem}-{kind}.png"
        painter(results, out / name)
        if (out / name).exists():
            drawn[title] = name
    return drawn
