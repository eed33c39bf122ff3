"""The failover part's Markdown table and plot, from its JSON (`make bench PART=failover`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from lab.bench._figure import save

SCENARIOS = ("host lost", "replica behind", "grown")
MODES = ("WAIT 1", "no WAIT")

STATUS_STYLE = {
    "202": ("tab:green", "202 accepted"),
    "503": ("tab:red", "503 (shard paused, or not confirmed)"),
}
EVENT_STYLE = {
    "replica cut off": ("tab:purple", ":"),
    "primary's host lost": ("black", "--"),
    "replica promoted": ("tab:orange", "--"),
    "host back": ("tab:grey", ":"),
    "rejoined as replica": ("tab:blue", ":"),
    "growing": ("black", "--"),
    "grown": ("tab:blue", ":"),
}


def summary(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per scenario and mode: medians over the runs, and every lost signup counted."""
    rows_: list[dict[str, Any]] = []
    for scenario in SCENARIOS:
        for mode in MODES:
            runs = [r for r in result["runs"] if r["scenario"] == scenario and r["mode"] == mode]
            if not runs:
                continue
            rows_.append(
                {
                    "scenario": scenario,
                    "mode": mode,
                    "runs": len(runs),
                    "promotion_s": _median([r["promotion_s"] for r in runs]),
                    "disturbed_s": _median([r["disturbed_s"] for r in runs]),
                    "lost": [len(r["lost"]) for r in runs],
                    "acknowledged": [r["acknowledged"] for r in runs],
                    "p95_ms": statistics.median(
                        r["p95_ms"]["acknowledged_outside_failover"] or 0 for r in runs
                    ),
                    "app_cpu_ms": statistics.median(
                        r["cpu_ms_per_signup"].get("app", 0) for r in runs
                    ),
                    "redis_cpu_ms": statistics.median(
                        r["cpu_ms_per_signup"].get("redis", 0) for r in runs
                    ),
                }
            )
    return rows_


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _answers(period: Mapping[str, int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(period.items())) or "none"


def markdown(result: Mapping[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "Written by `make bench PART=failover` (shared/lab/bench/_failover.py says how):",
        f"phase 4 natively, {result['rate']} signups/s for {result['duration_s']} s.",
        f"{result['cut_at_s']} s in, one primary's host loses its link; after its replica is",
        f"promoted the host stays away {result['host_away_s']} s more, then comes back as the",
        "new primary's replica. In `replica behind`, the replica's host is cut off",
        f"{result['lag_s']} s before, and comes back as the primary's goes. In `grown`, a fourth",
        "primary and its replica join instead, and a quarter of the slots move onto them.",
        "",
        "Promotion: from the host lost to its replica serving. Disturbed: until the host",
        "rejoined, or the growing was done. A signup is lost when it was answered 202 and never",
        "became a row. p95: of the 202s outside the disturbance. CPU: per acknowledged signup.",
        "Medians over the runs, but the losses of every run.",
        "",
        "| scenario, mode | runs | promotion s | disturbed s | lost (each run) | acknowledged "
        "(each run) | p95 ms | app CPU ms | Redis CPU ms |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for row in summary(result):
        promotion = "-" if row["promotion_s"] is None else f"{row['promotion_s']:.1f}"
        lines.append(
            f"| {row['scenario']}, {row['mode']} | {row['runs']} | {promotion} | "
            f"{row['disturbed_s']:.1f} | "
            f"{', '.join(f'{n:,}' for n in row['lost'])} | "
            f"{', '.join(f'{n:,}' for n in row['acknowledged'])} | {row['p95_ms']:.1f} | "
            f"{row['app_cpu_ms']:.2f} | {row['redis_cpu_ms']:.3f} |"
        )
    lines += [
        "",
        "Answers by status while disturbed (the host lost until it rejoined, or growing), and"
        " after:",
        "",
        "| scenario | mode | run | during | after |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['scenario']} | {r['mode']} | {r['run']} | {_answers(r['answers']['during'])} "
            f"| {_answers(r['answers']['after'])} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], path: Path) -> None:
    """Per scenario and mode (first run): answers per second by status, the writer's backlog,
    and the events."""
    shown = [
        next(r for r in result["runs"] if r["scenario"] == s and r["mode"] == m)
        for s in dict.fromkeys(r["scenario"] for r in result["runs"])
        for m in dict.fromkeys(r["mode"] for r in result["runs"])
    ]
    fig, axes = plt.subplots(len(shown), 1, figsize=(11, 2.9 * len(shown)), squeeze=False)
    for run, (ax,) in zip(shown, axes, strict=True):
        series = run["per_second"]
        start = series["start"][0]
        for status, values in series.items():
            if status == "start" or not any(values):
                continue
            color, label = STATUS_STYLE.get(status, ("tab:brown", f"{status}"))
            ax.plot(range(len(values)), values, color=color, label=label, linewidth=1.2)
        ax.set_ylabel("answers / s")
        ax.set_ylim(bottom=0)
        backlog = run["backlog"]
        if backlog and any(v for _, v in backlog):
            right = ax.twinx()
            right.plot(
                [t - start for t, _ in backlog],
                [v for _, v in backlog],
                color="tab:cyan",
                linewidth=1,
                label="writer backlog",
            )
            right.set_ylabel("signups waiting in the streams")
            right.set_ylim(bottom=0)
            right.legend(loc="upper right", fontsize=8)
        for event, at in run["events"].items():
            color, style = EVENT_STYLE[event]
            ax.axvline(at - start, color=color, linestyle=style, linewidth=1, label=event)
        promoted = (
            "" if run["promotion_s"] is None else f"promoted after {run['promotion_s']:.1f} s, "
        )
        ax.set_title(
            f"{run['scenario']}, {run['mode']}: {promoted}"
            f"{len(run['lost'])} acknowledged signups lost",
            fontsize=10,
        )
        ax.legend(loc="lower left", fontsize=8, ncol=3)
    axes[-1][0].set_xlabel("seconds since the first answer")
    fig.tight_layout()
    save(fig, path)


def write(json_path: Path) -> list[Path]:
    result = json.loads(json_path.read_text())
    bench = result["bench"]
    title = f"Phase 4: a primary's host lost under load ({bench['host']}, {bench['date']})"
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(result, title))
    png_path = json_path.with_suffix(".png")
    plot(result, png_path)
    return [json_path, md_path, png_path]
