"""The whole machine's pictures: each target over time, latency against rate, phase by phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from lab.bench import _figure, _plan
from lab.bench._figure import save, stacked


def measured(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The whole machine's targets that were measured: the HTTP ceiling, then the phases."""
    found = {}
    http = results["ceilings"].get("http")
    if http and http.get("status") == "measured":
        found["HTTP ceiling"] = http
    for name, phase in results["phases"].items():
        if phase.get("status") == "measured":
            found[name] = phase
    return found


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def throughput(results: dict[str, Any], path: Path) -> None:
    """Offered and achieved rate, and CPU by service, over each target's run."""
    targets = measured(results)
    rows = max(1, len(targets))
    fig, axes = plt.subplots(rows, 2, figsize=(13, 3.2 * rows), squeeze=False)
    for (name, data), (left, right) in zip(targets.items(), axes, strict=False):
        timeline = data.get("timeline") or []
        t = [s["t"] - timeline[0]["t"] for s in timeline] if timeline else []
        left.step(t, [s["offered"] for s in timeline], where="post", label="offered", color="grey")
        left.plot(t, [s["achieved"] for s in timeline], label="achieved", color="tab:blue")
        left.set_title(f"{name}: requests/s")
        left.set_ylabel("req/s")
        left.legend(loc="upper left", fontsize=8)
        services = sorted({s for sample in timeline for s in sample["cpu"]})
        for service in services:
            right.plot(t, [s["cpu"].get(service, 0.0) for s in timeline], label=service)
        right.set_title(f"{name}: CPU cores used, by service")
        right.set_ylabel("cores")
        if services:
            right.legend(loc="upper left", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    save(fig, path)


def latency(results: dict[str, Any], path: Path) -> None:
    """p95 and p99 of every step against the rate offered, with the SLO line."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for index, (name, data) in enumerate(measured(results).items()):
        # The search's steps as lines; the repeated runs at the rate found as open squares.
        steps = sorted(data.get("search", []), key=lambda s: s["rate"])
        color = f"C{index}"
        rates = [s["rate"] for s in steps]
        ax.plot(rates, [_nan(s["p95_ms"]) for s in steps], "o-", color=color, label=f"{name} p95")
        ax.plot(rates, [_nan(s["p99_ms"]) for s in steps], "x:", color=color, label=f"{name} p99")
        runs = data.get("runs", [])
        ax.plot(
            [r["rate"] for r in runs],
            [_nan(r["p95_ms"]) for r in runs],
            "s",
            mfc="none",
            color=color,
            label=f"{name} p95, runs at the rate found",
        )
    ax.axhline(_plan.P95_MS, color="red", linestyle="--", linewidth=1, label="SLO: p95 100 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered arrival rate (signups/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency against offered rate (open model)")
    ax.legend(fontsize=8)
    save(fig, path)


def phases(results: dict[str, Any], path: Path) -> None:
    """Sustained rate (raw and per core) and CPU per 1,000 signups, phase against phase."""
    targets = measured(results)
    names = list(targets)
    fig, (rate_ax, core_ax, cpu_ax) = plt.subplots(1, 3, figsize=(15, 4.5))
    rate_ax.bar(names, [targets[n]["sustained_rate"] for n in names], color="tab:blue")
    rate_ax.set_title("sustained signups/s (SLO held)")
    core_ax.bar(names, [targets[n]["per_core"] or 0 for n in names], color="tab:green")
    core_ax.set_title("signups/s per core of CPU budget")
    services = sorted({s for n in names for s in targets[n]["cpu_seconds_per_1k"]})
    per_1k = {s: [targets[n]["cpu_seconds_per_1k"].get(s) or 0.0 for n in names] for s in services}
    stacked(cpu_ax, names, per_1k)
    cpu_ax.set_title("CPU seconds per 1,000 signups")
    if services:
        cpu_ax.legend(fontsize=8)
    for ax in (rate_ax, core_ax, cpu_ax):
        ax.tick_params(axis="x", labelrotation=20)
    save(fig, path)


PICTURES: list[tuple[str, str, _figure.Painter]] = [
    ("throughput over time", "throughput", throughput),
    ("latency against offered rate", "latency", latency),
    ("phase against phase", "phases", phases),
]


def draw(results: dict[str, Any], folder: Path, stem: str) -> dict[str, str]:
    """{title: file name} of the three pictures, none if the whole-machine part did not run."""
    return _figure.draw(results, folder, stem, PICTURES) if measured(results) else {}
