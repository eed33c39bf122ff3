"""What one signup costs in CPU, per service, against the bare HTTP path, at one fixed rate.

CPU per signup falls as the rate rises (more requests per event-loop wake-up, fuller
batches), so costs measured at each phase's own sustained rate cannot be compared with each
other or with the last run's. Here every target gets the same arrival rate: the 1M target's
(1,000,000 signups in 10 minutes), under the compose file's own limits:

- `bare`: phase 1's app with SIGNUP_STORE=none: HTTP, validation, metrics, nothing stored;
- `phase1`: the same app inserting each row (INSERT ... RETURNING through the pool);
- `phase3`: the app queueing each signup in Redis, the writer copying them into PostgreSQL.

Each run's CPU is read from the services' cgroups after the step's work is done (phase 3:
the stream is empty, so the writer's rows for that run are in), and divided by the signups
acknowledged; k6's own CPU per request is measured in the same runs. A change that makes a
signup dearer shows here as a larger `above bare` in the next bench.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.bench._report import median
from lab.bench._targets import HTTP_CEILING, PHASE_TARGETS, Bench, Target, started

# The 1M target's rate: 1,000,000 signups in 10 minutes.
RATE = 1_667
# ms of CPU per signup (= CPU seconds per 1,000) each part should stay under; `k6` is per
# request sent.
GOALS = {"phase1 app": 0.25, "phase3 app": 0.25, "phase3 writer": 0.05, "k6": 0.25}


@dataclass(frozen=True)
class CostPlan:
    rate: int
    seconds: int  # each measured run
    runs: int  # medians over these
    warm_seconds: int  # one run first, not counted: pools filled, statements prepared


FULL = CostPlan(rate=RATE, seconds=10, runs=3, warm_seconds=5)
QUICK = CostPlan(rate=300, seconds=3, runs=1, warm_seconds=0)
TARGETS: dict[str, Target] = {
    "bare": HTTP_CEILING,
    "phase1": PHASE_TARGETS["phase1"],
    "phase3": PHASE_TARGETS["phase3"],
}


def _run(target: Target, plan: CostPlan, bench: Bench) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with started(target, bench, settle_timeout=120, prefix="cost") as on:
        if plan.warm_seconds:
            on.settle.after(on.runner.run(plan.rate, plan.warm_seconds))
        for i in range(plan.runs):
            bench.progress.step(f"{target.name}: run {i + 1}/{plan.runs}, {plan.rate}/s")
            step, cpu = on.cpu_step(plan.rate, plan.seconds)
            done = max(step.acknowledged, 1)
            ms = {s: round(used / done * 1000, 4) for s, used in cpu.items()}
            ms["k6"] = round(step.k6_cpu_seconds / max(step.sent, 1) * 1000, 4)
            runs.append(
                {
                    "acknowledged": step.acknowledged,
                    "p95_ms": step.p95_ms,
                    "slo_held": step.slo_held,
                    "ms_per_signup": ms,
                }
            )
            shown = ", ".join(f"{s} {v:.3f}" for s, v in sorted(ms.items()) if v >= 0.001)
            bench.progress.result(f"CPU ms per signup: {shown}")
        rows = on.settle.check()
    parts = sorted({p for r in runs for p in r["ms_per_signup"]})
    return {
        "title": target.title,
        "ms_per_signup": {p: median(r["ms_per_signup"].get(p) for r in runs) for p in parts},
        "runs": runs,
        "rows_check": rows,
    }


def collect(plan: CostPlan, bench: Bench) -> dict[str, Any]:
    bench.progress.section(
        "CPU per signup",
        f"bare HTTP, phase 1 and phase 3 at one rate ({plan.rate}/s, {plan.runs} x "
        f"{plan.seconds}s each), CPU ms per signup by service",
    )
    result: dict[str, Any] = {"rate": plan.rate, "seconds": plan.seconds, "runs": plan.runs}
    targets: dict[str, Any] = {}
    for name, target in TARGETS.items():
        bench.progress.step(f"starting {name} natively under its compose limits")
        targets[name] = _run(target, plan, bench)
    result["targets"] = targets
    result["goals"] = goals(targets)
    return result


def goals(targets: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal: the measured median against its limit (None when that part did not run)."""

    def cost(target: str, part: str) -> float | None:
        value = targets.get(target, {}).get("ms_per_signup", {}).get(part)
        return None if value is None else float(value)

    def goal(name: str, value: float | None) -> dict[str, Any]:
        limit = GOALS[name]
        met = value is not None and value <= limit
        return {"goal": name, "limit_ms": limit, "measured_ms": value, "met": met}

    return [
        goal("phase1 app", cost("phase1", "app")),
        goal("phase3 app", cost("phase3", "app")),
        goal("phase3 writer", cost("phase3", "writer")),
        goal("k6", median(cost(t, "k6") for t in targets)),
    ]


def markdown(cost: dict[str, Any]) -> list[str]:
    """The run's section: CPU ms per signup by part, and the goals."""
    if cost.get("status") == "failed":
        return ["## CPU per signup at one rate", "", f"Failed: {cost['error']}", ""]
    targets = cost["targets"]
    bare = targets.get("bare", {}).get("ms_per_signup", {}).get("app")
    lines = [
        "## CPU per signup at one rate",
        "",
        f"Every target offered {cost['rate']:,}/s ({cost['runs']} runs of "
        f"{cost['seconds']} s, medians), under the compose files' own limits. CPU ms per "
        "signup is a service's cgroup CPU over the run (phase 3: until the stream was empty) "
        "divided by the signups acknowledged; k6's is per request sent. `bare` is phase 1's app "
        "storing nothing (SIGNUP_STORE=none).",
        "",
        "| target | part | CPU ms per signup | above bare |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, t in targets.items():
        for part, value in sorted(t["ms_per_signup"].items()):
            if value is None or value < 0.001:
                continue
            above = f"{value - bare:+.3f}" if part == "app" and bare is not None else ""
            lines.append(f"| {name} | {part} | {value:.3f} | {above} |")
    lines += ["", "| goal | limit (ms) | measured (ms) | met |", "| --- | ---: | ---: | --- |"]
    for g in cost["goals"]:
        shown = "-" if g["measured_ms"] is None else f"{g['measured_ms']:.3f}"
        lines.append(f"| {g['goal']} | {g['limit_ms']} | {shown} | {'yes' if g['met'] else 'no'} |")
    return [*lines, ""]
