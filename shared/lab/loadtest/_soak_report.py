"""What a soak leaves behind: `<test id>.soak.json` (every window's p99 and every service's
memory, the forced events, the verdicts), a text summary, and `<test id>.soak.png`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from lab.loadtest import _k6
from lab.loadtest._soak_sampler import Sample, Sampler
from lab.loadtest.soak import (
    GROWTH,
    LEVEL_WINDOWS,
    UNJUDGED,
    WARMUP_WINDOWS,
    Growth,
    allowance,
    judge,
    judged,
    levels,
)

MIB = 1 << 20


def build(
    k6_soak: dict[str, Any], samples: list[Sample], events: list[dict[str, Any]]
) -> dict[str, Any]:
    verdicts = judge(samples)
    windows = k6_soak.get("windows", [])
    latency_ok = bool(windows) and all(w["ok"] for w in windows)
    memory_ok = bool(verdicts) and all(v.ok for v in verdicts)
    events_ok = bool(events) and all(e["outcome"] == "ok" for e in events)
    return {
        "rate": k6_soak.get("rate"),
        "window_s": k6_soak.get("window_s"),
        "slo_ms": k6_soak.get("slo_ms"),
        "warmup_windows": WARMUP_WINDOWS,
        "level_windows": LEVEL_WINDOWS,
        "windows": windows,
        "samples": [asdict(s) for s in samples],
        "events": events,
        "memory": [asdict(v) | {"ok": v.ok} for v in verdicts],
        "unjudged": UNJUDGED,
        "passed": {"latency": latency_ok, "memory": memory_ok, "events": events_ok},
    }


def describe(report: dict[str, Any]) -> str:
    lines = [
        f"soak: {len(report['windows'])} windows of {report['window_s']:g} s at {report['rate']}/s"
    ]
    worst = max((w["p99_ms"] or 0 for w in report["windows"]), default=0)
    broken = [w["window"] for w in report["windows"] if not w["ok"]]
    lines.append(
        f"  p99 of valid signups: worst window {worst:.1f} ms (SLO {report['slo_ms']} ms); "
        + (f"over it in windows {broken}" if broken else "every window within it")
    )
    for event in report["events"]:
        lines.append(
            f"  {event['event']} at {event['at_s']:g} s: {event['outcome']} ({event['took_s']} s)"
        )
    if not report["events"]:
        lines.append("  the run ended before the forced CHECKPOINT and AOF rewrite")
    if not report["memory"]:
        lines.append(
            f"  memory not judged: the run ended before "
            f"{report['warmup_windows'] + 2 * LEVEL_WINDOWS} windows were sampled"
        )
    else:
        lines.append(
            f"  memory, private (anonymous PSS): levels (medians of {LEVEL_WINDOWS} windows) "
            "against the base level\n  (the warm-up's last window and the two after it), "
            f"growth allowed {GROWTH:.0%}; the level nearest its allowance:"
        )
    for row in report["memory"]:
        v = Growth(**{k: row[k] for k in ("service", "base", "grew", "allowed", "note")})
        lines.append(
            f"    {v.service:<22} {v.base / MIB:8.1f} MiB  grew {v.grew / MIB:+7.2f} MiB "
            f"(allowed {v.allowed / MIB:.2f}{', ' + v.note if v.note else ''})  "
            f"{'ok' if v.ok else 'GREW'}"
        )
    for name, why in report["unjudged"].items():
        lines.append(f"    {name:<22} not judged: {why}")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    window_s = report["window_s"] or 1
    xs = [(w["window"] + 1) * window_s / 60 for w in report["windows"]]
    top.plot(xs, [w["p99_ms"] or float("nan") for w in report["windows"]], marker="o")
    top.axhline(report["slo_ms"], color="#E24D42", linestyle="--", label="SLO")
    top.set_ylabel("p99 of valid signups (ms)")
    top.set_title(f"soak at {report['rate']}/s: p99 per window and memory per service")
    samples = [Sample(**sample) for sample in report["samples"]]
    colours = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    names = sorted({name for sample in samples for name in sample.private})
    for index, name in enumerate(names):
        found = levels(samples, name)
        if not judged(name) or not found or found[0].private <= 0:
            continue
        base = found[0]
        shares = [(lv.private - base.private) / allowance(name, base, lv) * 100 for lv in found]
        colour = colours[index % len(colours)]
        bottom.plot([lv.at / 60 for lv in found], shares, label=name, color=colour)
    bottom.axhline(100, color="#E24D42", linestyle="--", label="allowed")
    bottom.set_ylabel(f"memory level (median of {LEVEL_WINDOWS} windows)\nover its base, % allowed")
    bottom.set_xlabel("minutes")
    bottom.legend(fontsize="x-small", ncol=3)
    for axis in (top, bottom):
        for event in report["events"]:
            axis.axvline(event["at_s"] / 60, color="#888888", linestyle=":")
    for event in report["events"]:
        top.annotate(event["event"], (event["at_s"] / 60, report["slo_ms"]), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(summary: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    data = summary.with_suffix(".soak.json")
    data.write_text(json.dumps(report, indent=1) + "\n")
    picture = summary.with_suffix(".soak.png")
    plot(report, picture)
    return data, picture


def finish(summary: Path, sampler: Sampler, code: int) -> int:
    """Add the memory verdicts and the forced events to k6's; write them beside its summary.
    A soak that k6 passed fails (k6's "thresholds crossed") when memory grew or an event
    failed."""
    k6_soak = json.loads(summary.read_text()).get("lab", {}).get("soak", {})
    if not k6_soak.get("windows"):  # k6 stopped before its first window (its setup failed)
        print("soak: k6 recorded no windows, so there is nothing to judge", file=sys.stderr)
        return code or _k6.THRESHOLDS_CROSSED
    report = build(k6_soak, sampler.samples, sampler.events)
    data, picture = write(summary, report)
    print(describe(report), end="")
    print(f"soak report: {data} and {picture.name}")
    if code == 0 and not all(report["passed"].values()):
        failed = ", ".join(k for k, ok in report["passed"].items() if not ok)
        print(f"soak failed: {failed}", file=sys.stderr)
        return _k6.THRESHOLDS_CROSSED
    return code
