"""The bench's results: one JSON document, and the Markdown table made from it.

Every rate is reported raw, per core of the phase's CPU budget, and as a ratio to the
ceilings measured in the same run, so a number from a slower or busier machine still says
something: the ratios travel, the raw rates do not.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from lab.bench import _plan, _scale_goals, _scale_report
from lab.bench._steps import Step
from lab.bench._targets import Measurement, Target

NOTE = (
    "k6 runs on the same host as the services and shares its {cores} cores with them "
    "(its own CPU per 1,000 requests is in each row), so every rate here is what the "
    "services reach next to their load generator, not alone."
)


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def latency(runs: list[Step]) -> dict[str, float | None]:
    return {
        "p50": median(r.p50_ms for r in runs),
        "p95": median(r.p95_ms for r in runs),
        "p99": median(r.p99_ms for r in runs),
    }


def target_result(
    target: Target, m: Measurement, services: dict[str, Any], budget: float
) -> dict[str, Any]:
    runs = m.confirm
    per_1k: dict[str, float | None] = {}
    for service in sorted({s for cpu in m.cpu for s in cpu}):
        per_1k[service] = median(
            cpu.get(service, 0.0) / (r.acknowledged / 1000)
            for r, cpu in zip(runs, m.cpu, strict=True)
            if r.acknowledged
        )
    result: dict[str, Any] = {
        "title": target.title,
        "status": "measured",
        "services": services,
        "cpu_budget_cores": budget,
        "sustained_rate": m.sustained_rate,
        "confirmed": m.confirmed,
        "per_core": m.sustained_rate / budget if budget else None,
        "latency_ms": latency(runs),
        "error_rate": median(r.error_rate for r in runs),
        "dropped_share": median(r.dropped_share for r in runs),
        "cpu_seconds_per_1k": per_1k,
        "k6_cpu_seconds_per_1k": median(r.k6_cpu_seconds / (r.sent / 1000) for r in runs if r.sent),
        "runs": [r.as_dict() for r in runs],
        "search": [s.as_dict() for s in m.steps],
        "timeline": m.timeline,
    }
    result.update({k: v for k, v in m.extras.items() if k != "postgres"})
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def add_ratios(results: dict[str, Any]) -> None:
    """Each phase against the ceilings of the same run, and the issue's goals."""
    http = results["ceilings"].get("http", {}).get("sustained_rate")
    pg = results["ceilings"].get("postgres") or {}
    for phase in results["phases"].values():
        if phase.get("status") != "measured":
            continue
        rate = phase["sustained_rate"]
        phase["vs_http_ceiling"] = _ratio(rate, http)
        phase["vs_postgres_inserts"] = _ratio(rate, pg.get("insert_rows_per_s"))
        phase["vs_postgres_copy"] = _ratio(rate, pg.get("copy_into_users_rows_per_s"))
    results["goals"] = goals(results)
    if results.get("scale_model"):
        results["scale_model"]["goals"] = _scale_goals.goals(results["scale_model"])


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    phases = results["phases"]

    def get(phase: str, *path: str) -> Any:
        value: Any = phases.get(phase, {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def goal(text: str, measured: float | None, bound: float, at_least: bool) -> dict[str, Any]:
        met = None if measured is None else (measured >= bound if at_least else measured <= bound)
        return {"goal": text, "measured": measured, "bound": bound, "met": met}

    db1 = get("phase1", "cpu_seconds_per_1k", "db")
    db3 = get("phase3", "cpu_seconds_per_1k", "db")
    return [
        goal(
            "phase 1 sustains >= 0.5x the HTTP ceiling", get("phase1", "vs_http_ceiling"), 0.5, True
        ),
        goal(
            "phase 3 sustains >= 0.8x the HTTP ceiling", get("phase3", "vs_http_ceiling"), 0.8, True
        ),
        goal(
            "phase 3 p95 from 202 to row < 2 s", get("phase3", "accept_to_row", "p95_s"), 2.0, False
        ),
        goal("phase 3 PostgreSQL CPU per signup <= 0.2x phase 1's", _ratio(db3, db1), 0.2, False),
    ]


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(
    results: dict[str, Any], plots: dict[str, str], sections: list[str] | None = None
) -> str:
    """The run's Markdown; `sections` (the cost part's) follow the scale model's."""
    bench = results["bench"]
    lines = [f"# Bench: {bench['host']}, {bench['date']}", ""]
    if bench["quick"]:
        lines += [
            "> **QUICK SMOKE RUN** (`--quick`): seconds per step, one run per rate. It proves "
            "the bench works; its numbers are not measurements. Run `make bench` for those.",
            "",
        ]
    part = bench.get("part", "all")
    flags = (" --quick" if bench["quick"] else "") + ("" if part == "all" else f" --part {part}")
    lines += [
        f"`python -m lab.bench{flags}`, "
        f"{bench['duration_s'] / 60:.1f} minutes, {bench['cpu_count']} cores "
        f"({bench['cpu_model']}), load average at start {bench['load_average_start']}; "
        f"cgroups: {bench['cgroups']}.",
        "",
    ]
    lines += _scale_report.markdown(results)
    lines += sections or []
    if not results["phases"] and not results["ceilings"]:
        if plots:
            lines += ["## Plots", ""]
            lines += [f"![{title}]({path})" for title, path in plots.items()]
        return "\n".join(lines) + "\n"
    lines += [
        "## Whole machine: every service under the compose file's own limits",
        "",
        NOTE.format(cores=bench["cpu_count"]),
        "",
        f"SLO for a rate to count as sustained: p95 < {_plan.P95_MS:.0f} ms, errors < "
        f"{_plan.ERROR_RATE:.1%}, dropped arrivals < {_plan.DROPPED_SHARE:.0%} (open model), "
        f"median of {bench['plan']['runs']} runs of {bench['plan']['confirm_seconds']} s.",
        "",
        "### Ceilings",
        "",
        "| ceiling | rate | how |",
        "| --- | ---: | --- |",
    ]
    http = results["ceilings"].get("http", {})
    if http.get("status") == "measured":
        lines.append(
            f"| HTTP, no persistence | {_n(http['sustained_rate'])} req/s "
            f"({_n(http['per_core'])}/core) | phase 1's app with SIGNUP_STORE=none, "
            f"{http['cpu_budget_cores']} core budget, same k6 steps |"
        )
    pg = results["ceilings"].get("postgres")
    if pg:
        lines += [
            f"| PostgreSQL single-row inserts | {_n(pg['insert_rows_per_s'])} rows/s | pgbench, "
            f"{pg['clients']} clients, one INSERT ... RETURNING per transaction, db limit "
            f"{pg['db_cpus']} core |",
            f"| PostgreSQL COPY into a staging table | {_n(pg['copy_staging_rows_per_s'])} rows/s "
            f"| psycopg COPY, batches of {pg['batch']} |",
            f"| PostgreSQL COPY through staging into users | "
            f"{_n(pg['copy_into_users_rows_per_s'])} rows/s "
            "| + INSERT ... SELECT ON CONFLICT DO NOTHING |",
        ]
    lines += [
        "",
        "### Phases",
        "",
        "| phase | CPU budget | signups/s | per core | x HTTP ceiling | x pg inserts "
        "| p50 / p95 / p99 ms | CPU s per 1,000 signups | k6 CPU s / 1,000 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for name, phase in results["phases"].items():
        if phase.get("status") != "measured":
            why = phase.get("reason") or phase.get("error")
            lines.append(f"| {name} | {phase.get('status')}: {why} |||||||| ")
            continue
        lat = phase["latency_ms"]
        cpu = ", ".join(f"{s} {_n(v, 2)}" for s, v in phase["cpu_seconds_per_1k"].items())
        flag = "" if phase["confirmed"] else " (not confirmed)"
        lines.append(
            f"| {name} | {phase['cpu_budget_cores']:g} cores | {_n(phase['sustained_rate'])}{flag} "
            f"| {_n(phase['per_core'])} | {_n(phase.get('vs_http_ceiling'), 2)} "
            f"| {_n(phase.get('vs_postgres_inserts'), 2)} "
            f"| {_n(lat['p50'], 1)} / {_n(lat['p95'], 1)} / {_n(lat['p99'], 1)} | {cpu} "
            f"| {_n(phase['k6_cpu_seconds_per_1k'], 2)} |"
        )
    p3 = results["phases"].get("phase3", {})
    if p3.get("status") == "measured":
        a2r, drain = p3.get("accept_to_row") or {}, p3.get("drain") or {}
        lines += [
            "",
            "### Phase 3: from 202 to row",
            "",
            f"- time from 202 to row at {_n(p3['sustained_rate'])}/s: p50 "
            f"{_n(a2r.get('p50_s'), 3)} s, p95 {_n(a2r.get('p95_s'), 3)} s "
            f"(writer histogram `signup_accept_to_row_seconds`, {_n(a2r.get('count'))} signups)",
            f"- backlog drain: {_n(drain.get('backlog'))} queued signups became rows at "
            f"{_n(drain.get('rows_per_s'))} rows/s (writers stopped while k6 filled the stream, "
            "then started again)",
        ]
    lines += ["", "### Goals", "", "| goal | measured | met |", "| --- | ---: | --- |"]
    for g in results["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        if g["met"] is False and g["bound"]:
            met += f" ({g['measured'] / g['bound']:.0%} of the bound {g['bound']:g})"
        lines.append(f"| {g['goal']} | {_n(g['measured'], 2)} | {met} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{title}]({path})" for title, path in plots.items()]
    return "\n".join(lines) + "\n"
