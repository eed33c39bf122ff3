"""What each cell of a results table must say, computed from the bench's JSON.

The formats are the bench's own Markdown (shared/lab/bench/_report.py), so a row copied from
`docs/results/<date>-<host>.md` checks as it is. Free-text columns (`how`, `notes`) are not
checked; any other column this module does not know fails the test, so a number cannot be
added to a table without a source.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lab.bench import _scale_goals, _scale_report

FREE_TEXT = frozenset({"how", "notes", "what"})


def n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def cores(value: float) -> str:
    return f"{value:g} core" + ("" if value == 1 else "s")


def plain(cell: str) -> str:
    """A cell as read: links reduced to their text, bold and code marks dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", cell)
    return text.replace("**", "").replace("`", "").strip()


def _measured(data: dict[str, Any]) -> dict[str, str]:
    lat = data["latency_ms"]
    a2r = data.get("accept_to_row") or {}
    rows = data.get("rows_check") or {}
    drain = data.get("drain") or {}
    flag = "" if data["confirmed"] else " (not confirmed)"
    cpu = ", ".join(f"{s} {n(v, 2)}" for s, v in data["cpu_seconds_per_1k"].items())
    return {
        "CPU budget": cores(data["cpu_budget_cores"]),
        "signups/s": f"{n(data['sustained_rate'])}{flag}",
        "per core": n(data["per_core"]),
        "x HTTP ceiling": n(data.get("vs_http_ceiling"), 2),
        "x pg inserts": n(data.get("vs_postgres_inserts"), 2),
        "x pg COPY": n(data.get("vs_postgres_copy"), 3),
        "p50 / p95 / p99 ms": " / ".join(n(lat[p], 1) for p in ("p50", "p95", "p99")),
        "p95 ms": n(lat["p95"], 1),
        "errors": f"{data['error_rate']:.2%}",
        "CPU s per 1,000 signups": cpu,
        "k6 CPU s / 1,000": n(data.get("k6_cpu_seconds_per_1k"), 2),
        "rows / acknowledged": f"{n(rows.get('rows'))} / {n(rows.get('acknowledged'))}",
        "202 to row p50 / p95 s": f"{n(a2r.get('p50_s'), 3)} / {n(a2r.get('p95_s'), 3)}",
        "backlog drain rows/s": n(drain.get("rows_per_s")),
    }


def bench_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """Column -> expected text for the row `key` (a phase, `HTTP ceiling`, or a ceiling)."""
    ceilings = results["ceilings"]
    if key in results["phases"]:
        return _measured(results["phases"][key])
    http = ceilings.get("http") or {}
    if key == "HTTP ceiling":
        return _measured(http)
    pg = ceilings.get("postgres") or {}
    rates = {
        "HTTP, no persistence": f"{n(http.get('sustained_rate'))} req/s "
        f"({n(http.get('per_core'))}/core)",
        "PostgreSQL single-row inserts": f"{n(pg.get('insert_rows_per_s'))} rows/s",
        "PostgreSQL COPY into a staging table": f"{n(pg.get('copy_staging_rows_per_s'))} rows/s",
        "PostgreSQL COPY through staging into users": (
            f"{n(pg.get('copy_into_users_rows_per_s'))} rows/s"
        ),
    }
    if key in rates:
        return {"rate": rates[key]}
    for goal in results.get("goals", []):
        if goal["goal"] == key:
            met = {True: "yes", False: "no", None: "not measured"}[goal["met"]]
            if goal["met"] is False and goal["bound"]:
                met += f" ({goal['measured'] / goal['bound']:.0%} of the bound {goal['bound']:g})"
            return {"measured": n(goal["measured"], 2), "met": met}
    facts = machine(results["bench"])
    if key in facts:
        return {"value": facts[key]}
    raise KeyError(f"no row {key!r} in the bench results")


def machine(bench: dict[str, Any]) -> dict[str, str]:
    """The run's facts as the results page shows them."""
    return {
        "host": bench["host"],
        "date": bench["date"],
        "CPU": f"{bench['cpu_count']} cores, {bench['cpu_model']}",
        "operating system": bench["platform"],
        "Python": bench["python"],
        "k6": bench["k6"],
        "PostgreSQL": bench["postgres"],
        "cgroups": bench["cgroups"],
        "load average at start": ", ".join(f"{x:g}" for x in bench["load_average_start"]),
        "load average at end": ", ".join(f"{x:g}" for x in bench.get("load_average_end", [])),
        "duration": f"{bench['duration_s'] / 60:.1f} minutes",
    }


def service_row(results: dict[str, Any], phase: str, service: str) -> dict[str, str]:
    """Column -> expected text for one service of a phase: its budget, its CPU per signup,
    the rate at which it would fill its budget, and the cores N signups/s would need."""
    data = results["phases"][phase]
    if service not in data["cpu_seconds_per_1k"]:
        raise KeyError(f"no service {service!r} measured in {phase}")
    spec = data["services"][service]
    budget = spec["cpus"] * spec["replicas"]
    per_1k = data["cpu_seconds_per_1k"][service]
    row = {
        "CPU budget (cores)": f"{budget:g}",
        "CPU s per 1,000 signups": n(per_1k, 2),
        "signups/s at its budget": n(budget / (per_1k / 1000)) if per_1k else "-",
    }
    for rate in (1_667, 10_000, 50_000):
        row[f"cores at {rate:,}/s"] = n(rate * per_1k / 1000, 1)
    return row


def scale_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """Column -> expected text for a row of the scale model: a point (`phase2 x3`), a burst
    (`phase3 burst`) or a goal (its text), in the bench's own cell formats."""
    scale = results["scale_model"]
    phase, _, rest = key.partition(" ")
    if rest == "burst" and (scale.get("burst") or {}).get(phase):
        return _scale_report.burst_cells(scale["burst"][phase])
    for point in scale["phases"].get(phase, []):
        if rest == f"x{point['replicas']}":
            cells = _scale_report.point_cells(point)
            # The CPU table has a column per service of any phase; a phase without it: "-".
            every = {s for pts in scale["phases"].values() for p in pts for s in p["cores"]}
            return {f"{s} ms": "-" for s in every} | cells
    for goal in scale.get("goals", []):
        if goal["goal"] == key:
            return _scale_report.goal_cells(goal)
    raise KeyError(f"no row {key!r} in the scale model's results")


def cluster_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """Column -> expected text for a row of the scale model's phase 3 against phase 4: a point
    (`phase4 x3`) at the comparison's Redis quota, or one of its goals (its text)."""
    scale = results["scale_model"]
    cluster = scale["cluster"]
    phase, _, rest = key.partition(" ")
    for point in cluster["phases"].get(phase, []):
        if rest == f"x{point['replicas']}":
            every = {s for pts in cluster["phases"].values() for p in pts for s in p["cores"]}
            idle = _scale_report.idle_cells(point, float(cluster["quotas"]["REDIS_CPUS"]))
            return {f"{s} ms": "-" for s in every} | _scale_report.point_cells(point) | idle
    for goal in _scale_goals.cluster_goals(cluster):
        if goal["goal"] == key:
            return _scale_report.goal_cells(goal)
    raise KeyError(f"no row {key!r} in the scale model's phase 3 against phase 4")


def cluster_quotable(results: dict[str, Any]) -> set[str]:
    """Every number the cluster page may quote from the comparison: each point's rate, p95,
    replicas, cores and CPU per signup, the Redis quota, the machine's slowdown, the Redis
    nodes at no load, and the ratio of the two phases' best rates."""
    cluster = results["scale_model"]["cluster"]
    values: list[float] = [float(cluster["quotas"]["REDIS_CPUS"])]
    for points in cluster["phases"].values():
        for p in points:
            values += [p["sustained_rate"], p["replicas"], p["k6_cores"], p["machine_cores"]]
            values += [v for v in p["latency_ms"].values() if v is not None]
            values += [v for v in p["cores"].values() if v is not None]
            values += [v for v in p["cpu_ms_per_signup"].values() if v is not None]
            values += [v for v in (p["machine"] or {}).values() if isinstance(v, float)]
            # The Redis nodes at no load: each, all together, and as a share of the busy CPU
            # and of one node's quota (the report's table of them).
            idle = {
                k: v for k, v in (p.get("idle_cores") or {}).items() if _scale_report.is_redis(k)
            }
            busy = sum(v for k, v in p["cores"].items() if _scale_report.is_redis(k))
            # Every step of the search and every confirming run: what held and what broke.
            for step in [*p["search"], *p["runs"]]:
                values += [step["rate"], *([step["p95_ms"]] if step.get("p95_ms") else [])]
            values += [*idle.values(), sum(idle.values())]
            values += [v / float(cluster["quotas"]["REDIS_CPUS"]) for v in idle.values()]
            values += [sum(idle.values()) / busy] if idle and busy else []
    values += [
        g["measured"]
        for g in _scale_goals.cluster_goals(cluster)
        if isinstance(g["measured"], float | int)
    ]
    return {form for value in values for form in _forms(float(value))}


def search_row(results: dict[str, Any], name: str, rate: str) -> dict[str, str]:
    """Column -> expected text for one step the bench offered (`phase1/search`): the rate
    offered is the row's key, as the bench ran it, search steps first."""
    data = results["ceilings"]["http"] if name == "http_ceiling" else results["phases"][name]
    for step in [*data["search"], *data["runs"]]:
        if n(step["rate"]) == rate:
            return {
                "achieved/s": n(step["achieved"]),
                "p95 ms": n(step["p95_ms"], 1),
                "p99 ms": n(step["p99_ms"], 1),
                "errors": f"{step['error_rate']:.3%}",
                "dropped": f"{step['dropped_share']:.1%}",
                "SLO held": "yes" if step["held"] else "no",
            }
    raise KeyError(f"{name} offered no step at {rate}/s")


def capacity_row(summary: dict[str, Any], rate: str) -> dict[str, str]:
    """Column -> expected text for one step of a `make load-test-capacity` summary (the
    `lab.capacity` section lab.loadtest adds), keyed by the rate offered."""
    for step in summary["lab"]["capacity"]["steps"]:
        if n(step["rate"]) == rate:
            return {
                "achieved": f"{step['achieved']:.1%}",
                "p95 ms": n(step["p95_ms"], 1),
                "errors": f"{step['error_rate']:.3%}",
                "SLO held": "yes" if step["ok"] else "no",
            }
    raise KeyError(f"the capacity test offered no step at {rate}/s")


def target_row(summary: dict[str, Any], key: str) -> dict[str, str]:
    """Column -> expected text for a `make load-test-target` summary (k6's JSON plus the
    `lab` section lab.loadtest adds); the row's key is the phase it ran against."""
    lab = summary.get("lab", {})
    if key != lab.get("phase"):
        raise KeyError(f"the summary is of {lab.get('phase')!r}, not {key!r}")
    metrics = summary["metrics"]

    def value(metric: str, stat: str) -> float:
        return float(metrics.get(metric, {}).get("values", {}).get(stat, 0))

    latency = "http_req_duration{kind:valid}"
    persisted = lab.get("persisted", {})
    return {
        "acknowledged": n(value("signups_acknowledged", "count")),
        "per second": n(value("signups_acknowledged", "rate")),
        "dropped arrivals": n(value("dropped_iterations", "count")),
        "p50 / p95 / p99 ms": " / ".join(
            n(value(latency, stat), 1) for stat in ("med", "p(95)", "p(99)")
        ),
        "failed requests": f"{value('http_req_failed{name:POST /signup}', 'rate'):.2%}",
        "rows in PostgreSQL": n(persisted.get("rows")),
        "missing": n(persisted.get("missing")),
    }


# --- Predictions from the scale model's CPU per signup (docs/beyond-one-machine.md) ------------
#
# The method: a service holds `cores / (CPU ms per signup) x 1000` signups per second; the first
# service to fill its cores is the wall. The pages quote what this gives, and how far it was
# from what the bench measured; the numbers are computed here, so the test checks them.

# The one instance of each design that copies cannot relieve, and why it is one.
SINGLE = {"phase1": "app", "phase2": "db", "phase3": "redis"}
TARGET_RATES = (1_667, 10_000, 50_000)
UTILISATION = 0.6  # the planning target of beyond-one-machine.md


def signed(value: float) -> str:
    """A relative error as the pages write it: `+18%`, `-9%`, `0%`."""
    text = f"{value:+.0%}"
    return "0%" if text in ("+0%", "-0%") else text


def _points(results: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = results["scale_model"]["phases"][phase]
    return points


def _fills(cores: dict[str, float], ms: dict[str, float]) -> dict[str, float]:
    """Service -> the signups/s at which it fills its cores."""
    return {s: cores[s] / ms[s] * 1000 for s in cores if ms.get(s)}


def predicted_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """A scale-model point (`phase2 x3`) predicted from its phase's one-replica CPU per signup
    and the point's own quotas, against what the bench measured there."""
    phase, _, rest = key.partition(" ")
    points = _points(results, phase)
    base = points[0]["cpu_ms_per_signup"]
    for point in points:
        if rest == f"x{point['replicas']}":
            fills = _fills(point["quota_cores"], base)
            first = min(fills, key=fills.__getitem__)
            measured = point["sustained_rate"]
            return {
                "predicted signups/s": n(fills[first]),
                "first to fill": first,
                "measured signups/s": n(measured),
                "limited by": point["limited_by"],
                "error": signed(fills[first] / measured - 1),
            }
    raise KeyError(f"no scale-model point {key!r}")


def total_ms(point: dict[str, Any]) -> float:
    return float(sum(point["cpu_ms_per_signup"].values()))


def machine_prediction_row(results: dict[str, Any], phase: str) -> dict[str, str]:
    """A whole-machine rate predicted from the scale model: the cores k6 left on the machine
    (its mean over the runs at the sustained rate) over the phase's CPU per signup at its
    last scale-model point."""
    data = results["phases"][phase]
    k6 = sum(r["k6_cores"] for r in data["runs"]) / len(data["runs"])
    left = results["bench"]["cpu_count"] - k6
    ms = total_ms(_points(results, phase)[-1])
    predicted = left / ms * 1000
    return {
        "cores k6 left": n(left, 2),
        "CPU ms per signup": n(ms, 3),
        "predicted signups/s": n(predicted),
        "measured signups/s": n(data["sustained_rate"]),
        "error": signed(predicted / data["sustained_rate"] - 1),
    }


def single_instance(results: dict[str, Any], phase: str) -> tuple[str, float, float]:
    """(service, its cores in the compose file, the signups/s at which it is full)."""
    service = SINGLE[phase]
    spec = results["phases"][phase]["services"][service]
    cores = spec["cpus"] * (1 if service != "app" else spec["replicas"])
    if service == "redis":
        cores = min(cores, 1.0)  # one thread runs its commands
    ms = _points(results, phase)[-1]["cpu_ms_per_signup"][service]
    return service, cores, cores / ms * 1000


def cores_row(results: dict[str, Any], phase: str) -> dict[str, str]:
    """A phase's predicted rate on N cores given to its services (k6 elsewhere): N over its CPU
    per signup, until its single instance is full."""
    ms = total_ms(_points(results, phase)[-1])
    service, cores, cap = single_instance(results, phase)
    row = {
        "CPU ms per signup": n(ms, 3),
        "the one instance": f"{service}, {cores:g} core" + ("" if cores == 1 else "s"),
        "full at signups/s": n(cap),
    }
    for total in (2, 4, 8, 16):
        row[f"on {total} cores"] = n(min(total / ms * 1000, cap))
    return row


def sizing_row(results: dict[str, Any], service: str) -> dict[str, str]:
    """One service of phase 3 at its last scale-model point: its CPU per signup, the cores a
    target rate keeps busy, and the 1-core instances that carry it at the planning target."""
    ms = _points(results, "phase3")[-1]["cpu_ms_per_signup"]
    if service not in ms:
        raise KeyError(f"no service {service!r} in phase 3's scale model")
    row = {"CPU ms per signup": n(ms[service], 3)}
    for rate in TARGET_RATES:
        busy = rate * ms[service] / 1000
        row[f"cores at {rate:,}/s"] = n(busy, 2)
        row[f"1-core instances at {rate:,}/s"] = str(max(1, math.ceil(busy / UTILISATION)))
    return row


def load_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """A scale-model point's evidence (`phase2 x4`): at the lowest rate that broke the SLO, the
    share of its quota each service used, and (in brackets) the share of its CFS periods in
    which it was throttled."""
    phase, _, rest = key.partition(" ")
    phases = results["scale_model"]["phases"].values()
    every = {s for points in phases for p in points for s in p["cores"]}
    for point in _points(results, phase):
        if rest == f"x{point['replicas']}":
            step = point["evidence_step"]
            row = {"broke at signups/s": n(step["rate"])} | {s: "-" for s in every}
            for service, load in step["load"].items():
                row[service] = f"{load['used']:.0%} ({load['throttled_share']:.0%})"
            return row
    raise KeyError(f"no scale-model point {key!r}")


def _forms(value: float) -> set[str]:
    """How a page may write a measured value: rounded to 0 to 3 decimals, or as a percent."""
    forms = {n(value, d) for d in range(4)} | {n(value * 100, d) for d in range(3)}
    return forms | {f.removesuffix(".0") for f in forms}


def quotable(results: dict[str, Any]) -> set[str]:
    """Every number a tutorial page may quote in its prose from this run: the scale model's
    points, their evidence and what the method predicts from them, the burst, the goals, the
    ceilings and the whole machine's rates, each in the forms `_forms` allows."""
    values: list[float] = []
    scale = results["scale_model"]
    for points in scale["phases"].values():
        base = points[0]["cpu_ms_per_signup"]
        for p in points:
            values += [p["sustained_rate"], *p["latency_ms"].values(), p["k6_cores"]]
            values += [p["machine_cores"], *p["cpu_ms_per_signup"].values()]
            values += [*p["quota_cores"].values(), p["evidence_step"]["rate"]]
            for load in p["evidence_step"]["load"].values():
                values += [load["used"], load["throttled_share"]]
            values += _fills(p["quota_cores"], p["cpu_ms_per_signup"]).values()
            values += _fills(p["quota_cores"], base).values()
            values += [UTILISATION / ms * 1000 for ms in p["cpu_ms_per_signup"].values() if ms]
    for burst in (scale.get("burst") or {}).values():
        values += [burst["rate"], burst["offered"], burst["acknowledged"], burst["rows"]]
        values += [burst["acknowledged_share"], burst["peak_backlog"], burst["dropped"]]
        values += [*burst["latency_ms"].values(), *burst["answered_by_status"].values()]
    values += [scale["burst_factor"]]
    values += [g["measured"] for g in scale["goals"] if isinstance(g["measured"], int | float)]
    http, pg = results["ceilings"]["http"], results["ceilings"]["postgres"]
    values += [http["sustained_rate"], pg["insert_rows_per_s"], pg["copy_into_users_rows_per_s"]]
    values += [pg["copy_staging_rows_per_s"]]
    for data in results["phases"].values():
        values += [data["sustained_rate"], data["per_core"], *data["latency_ms"].values()]
        values += [*data["cpu_seconds_per_1k"].values(), data["k6_cpu_seconds_per_1k"]]
        for extra in ("accept_to_row", "drain"):
            values += [v for v in (data.get(extra) or {}).values() if isinstance(v, int | float)]
        a2r = data.get("accept_to_row") or {}
        values += [v * 1000 for k, v in a2r.items() if k.endswith("_s")]
    for phase in results["phases"]:
        if phase in SINGLE:
            values.append(single_instance(results, phase)[2])
            values.append(total_ms(_points(results, phase)[-1]))
    return {form for value in values for form in _forms(float(value))}


def cost_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """The cost part (`make bench PART=cost`): a target's CPU ms per signup by part."""
    targets = results["cost"]["targets"]
    if key not in targets:
        raise KeyError(f"the cost part measured no target {key!r}")
    ms = targets[key]["ms_per_signup"]
    bare = targets["bare"]["ms_per_signup"]["app"]
    # Every part any target measured: a part this one has not (no db for `bare`) is a "-".
    parts = {part for target in targets.values() for part in target["ms_per_signup"]}
    row = {part: "-" if ms.get(part) is None else f"{ms[part]:.3f}" for part in parts}
    row["app above bare"] = f"{ms['app'] - bare:+.3f}"
    return row


def cost_goal_row(results: dict[str, Any], key: str) -> dict[str, str]:
    for goal in results["cost"]["goals"]:
        if goal["goal"] == key:
            return {
                "limit (ms)": f"{goal['limit_ms']}",
                "measured (ms)": n(goal["measured_ms"], 3),
                "met": "yes" if goal["met"] else "no",
            }
    raise KeyError(f"the cost part has no goal {key!r}")


def shed_row(results: dict[str, Any], config: str) -> dict[str, str]:
    """One configuration of `make bench PART=shed` (`by wait`, `no limit`): the median rate its
    capacity runs held, whether any of them lost a signup to an error at or below it, and the
    median of its overload runs (the last 503 after the overload: the latest of them)."""
    from lab.bench import _shed

    runs = [r for r in results["capacity"] if r["config"] == config]
    over = [o for o in results["overload"] if o["config"] == config]
    if not runs or not over:
        raise KeyError(f"no shedding configuration {config!r}")

    def median(values: list[float | None]) -> str:
        known = sorted(v for v in values if v is not None)
        return n(known[len(known) // 2], 1) if known else "-"

    late = [o["last_503_after_s"] for o in over if o["last_503_after_s"] is not None]
    return {
        "median held /s": n(_shed.medians(results)[config]),
        "errors at or below it": "none" if all(_shed.held_without_503(r) for r in runs) else "some",
        "overload /s": n(over[0]["rate"]),
        "503 p95 ms": median([o["overload"].get("503", {}).get("p95_ms") for o in over]),
        "served p95 ms": median([o["overload"].get("201", {}).get("p95_ms") for o in over]),
        "served p95 in the app ms": median([o.get("served_p95_in_app_ms") for o in over]),
        "last 503 after s": n(max(late), 2) if late else "none",
        "limited by": "; ".join(
            sorted(
                {
                    (o.get("wall") or {}).get("limited_by", {}).get("service") or "no CPU"
                    for o in over
                }
            )
        ),
    }


def failover_row(results: dict[str, Any], key: str) -> dict[str, str]:
    """One scenario and mode of `make bench PART=failover` (`host lost, WAIT 1`): medians over
    its runs, and the acknowledged signups lost in each run."""
    from lab.bench import _failover_report

    scenario, _, mode = key.partition(", ")
    for row in _failover_report.summary(results):
        if (row["scenario"], row["mode"]) == (scenario, mode):
            return {
                "runs": n(row["runs"]),
                "promotion s": n(row["promotion_s"], 1),
                "disturbed s": n(row["disturbed_s"], 1),
                "lost (each run)": ", ".join(n(v) for v in row["lost"]),
                "acknowledged (each run)": ", ".join(n(v) for v in row["acknowledged"]),
                "p95 ms": n(row["p95_ms"], 1),
                "app CPU ms": n(row["app_cpu_ms"], 2),
                "Redis CPU ms": n(row["redis_cpu_ms"], 3),
            }
    raise KeyError(f"no failover scenario and mode {key!r}")


def failover_quotable(results: dict[str, Any]) -> set[str]:
    """Every number the cluster page may quote from `make bench PART=failover`: the run's
    settings, each run's promotion, disturbance, answers by status, acknowledged and lost
    counts, p95 and CPU, each scenario's medians, and ratios between the two modes."""
    from lab.bench import _failover_report

    values: list[float] = [results[k] for k in ("rate", "duration_s", "cut_at_s")]
    values += [results["host_away_s"], results["lag_s"]]
    for run in results["runs"]:
        values += [v for v in (run["promotion_s"], run["disturbed_s"]) if v is not None]
        values += [run["acknowledged"], len(run["lost"])]
        values += [v for v in run["p95_ms"].values() if v is not None]
        values += run["cpu_ms_per_signup"].values()
        for period in run["answers"].values():
            values += period.values()
            values.append(sum(period.values()))
    rows = _failover_report.summary(results)
    for row in rows:
        values += [v for k, v in row.items() if isinstance(v, int | float)]
    by = {(r["scenario"], r["mode"]): r for r in rows}
    for scenario in {r["scenario"] for r in rows}:
        wait, bare = by.get((scenario, "WAIT 1")), by.get((scenario, "no WAIT"))
        if wait and bare:
            for key in ("p95_ms", "app_cpu_ms", "redis_cpu_ms"):
                if bare[key]:
                    values += [wait[key] / bare[key], wait[key] - bare[key]]
    return {form for value in values for form in _forms(float(value))}
