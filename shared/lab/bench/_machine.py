"""The whole machine: the HTTP ceiling, then each phase, every service under the compose
file's own limits, and PostgreSQL's own rates on the first phase's database.

This measures the machine with its load generator on it; the results say so (_report.NOTE).
"""

from __future__ import annotations

import traceback
from typing import Any

from lab.bench import _postgres, _report
from lab.bench._plan import Plan
from lab.bench._postgres import PgbenchFailed
from lab.bench._steps import StepFailed
from lab.bench._targets import (
    HTTP_CEILING,
    PHASE_TARGETS,
    Bench,
    Inside,
    Target,
    measure,
    resources,
    unavailable,
)
from lab.native.supervisor import StartError


def collect(plan: Plan, bench: Bench, phases: list[str]) -> dict[str, Any]:
    """`ceilings` and `phases` of the results."""
    bench.progress.section(
        "whole machine: HTTP ceiling",
        "phase 1's app with SIGNUP_STORE=none, under the compose file's own limits: what the "
        "same workers and load generator reach when nothing is stored",
    )
    ceilings: dict[str, Any] = {}
    measured: dict[str, Any] = {}
    ceilings["http"], _ = _target(HTTP_CEILING, plan, bench)
    pg_phase = "phase1" if "phase1" in phases else phases[0] if phases else None
    for name in phases:
        target = PHASE_TARGETS[name]
        bench.progress.section(
            f"whole machine: {target.title}",
            "highest arrival rate within the SLO, latency and CPU per signup at that rate"
            + (
                "; then PostgreSQL's own insert and COPY rates on its database"
                if name == pg_phase
                else ""
            ),
        )
        inside = _postgres.ceilings(plan, bench, name) if name == pg_phase else None
        measured[name], pg = _target(target, plan, bench, inside)
        if pg:
            ceilings["postgres"] = pg
    return {"ceilings": ceilings, "phases": measured}


def _target(
    target: Target, plan: Plan, bench: Bench, inside: Inside | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the target's result, the PostgreSQL ceilings if measured inside it)."""
    progress = bench.progress
    reason = unavailable(target)
    if reason:
        progress.note(f"skipping {target.name}: {reason}")
        return {"title": target.title, "status": "skipped", "reason": reason}, None
    services, budget, _ = resources(target)
    try:
        m = measure(target, plan, bench, inside=inside)
    except Exception as exc:  # one broken phase must not lose the others' numbers
        # What can go wrong in a run says itself; anything else also says where.
        expected = isinstance(exc, (StartError, StepFailed, TimeoutError, PgbenchFailed))
        error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        progress.warn(f"{target.name} failed: {error}")
        if not expected:
            traceback.print_exc()
        return {"title": target.title, "status": "failed", "error": error}, None
    result = _report.target_result(target, m, services, budget)
    progress.result(
        f"{target.name}: {m.sustained_rate:,}/s sustained on {budget:g} cores"
        + ("" if m.confirmed else " (not confirmed by the repeated runs)")
    )
    return result, m.extras.get("postgres")
