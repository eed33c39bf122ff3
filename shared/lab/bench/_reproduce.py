"""Does a wall reproduce? This run's scale-model points against the last committed run of the
same part, with what the disturbance probe read in each.

Two runs of the same code hours apart should agree on every wall within TOLERANCE. When they
do not, the probe says whether the machine moved: its quiet reading is the same work on the
same kind of CPU, so a run whose probe took 1.8x as long ran on a machine that much slower,
and its rates are not the code's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOLERANCE = 0.15


def points(scale: dict[str, Any]) -> dict[str, tuple[int, bool]]:
    """(rate, confirmed) by point name (`phase4 x3`; the cluster comparison's `... at redis`)."""
    found: dict[str, tuple[int, bool]] = {}
    for phase, pts in (scale.get("phases") or {}).items():
        found.update(
            {f"{phase} x{p['replicas']}": (p["sustained_rate"], p["confirmed"]) for p in pts}
        )
    cluster = scale.get("cluster") or {}
    redis = (cluster.get("quotas") or {}).get("REDIS_CPUS")
    for phase, pts in (cluster.get("phases") or {}).items():
        found.update(
            {
                f"{phase} x{p['replicas']} at redis {redis}": (p["sustained_rate"], p["confirmed"])
                for p in pts
            }
        )
    return found


def previous(
    results: dict[str, Any], folder: Path, skip: str = ""
) -> tuple[str, dict[str, Any]] | None:
    """The newest full run in `folder` of this run's part (a run without one is "all"),
    started before it, with a scale model; never `skip`, the file this run is written to."""
    bench = results["bench"]
    found = []
    for path in folder.glob("*.json"):
        if path.name == skip:
            continue  # this run's own file, when it is written again
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        other = data.get("bench") if isinstance(data, dict) else None
        if (
            not isinstance(other, dict)
            or other.get("quick")
            or other.get("part", "all") != bench.get("part", "all")
            or "scale_model" not in data
            or str(other.get("started_at", "")) >= str(bench.get("started_at", ""))
        ):
            continue
        found.append((str(other.get("started_at")), path.name, data))
    if not found:
        return None
    _, name, data = max(found)
    return name, data


def compare(results: dict[str, Any], folder: Path, skip: str = "") -> dict[str, Any] | None:
    """Every point both runs measured, the ratio of their rates, and both quiet probes."""
    scale = results.get("scale_model")
    if not scale or results["bench"].get("quick"):
        return None
    before = previous(results, folder, skip)
    if before is None:
        return {"previous": None}
    name, data = before
    then, now = points(data["scale_model"]), points(scale)
    # A point both runs measured. One whose rate did not hold in its confirming runs in either
    # run is a wall that did not reproduce, whatever the two rates say; so is one where either
    # run held no rate at all (no ratio).
    rows: list[dict[str, Any]] = []
    for key in now:
        if key not in then:
            continue
        (rate_then, held_then), (rate_now, held_now) = then[key], now[key]
        rows.append(
            {
                "point": key,
                "then": rate_then,
                "now": rate_now,
                "ratio": round(rate_now / rate_then, 3) if rate_then and rate_now else None,
                "unconfirmed": [
                    run for run, held in (("then", held_then), ("now", held_now)) if not held
                ],
            }
        )
    quiet_then = (data["scale_model"].get("machine_quiet") or {}).get("probe_ms")
    quiet_now = (scale.get("machine_quiet") or {}).get("probe_ms")
    return {
        "previous": name,
        "previous_started_at": data["bench"].get("started_at"),
        "probe_ms": {"then": quiet_then, "now": quiet_now},
        "points": rows,
        "within": all(_reproduced(r) for r in rows) if rows else None,
    }


def markdown(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    lines = ["", "### Does it reproduce?", ""]
    if found["previous"] is None:
        return [*lines, "No earlier full run of this part in this folder to compare with."]
    probe = found["probe_ms"]
    machine = "the disturbance probe was not recorded then"
    if probe["then"] and probe["now"]:
        ratio = probe["now"] / probe["then"]
        machine = (
            f"the probe took {probe['now']:.3f} ms of CPU on the quiet machine now against "
            f"{probe['then']:.3f} ms then ({ratio:.2f}x)"
        )
    rows = found["points"]
    moved = [r for r in rows if r["ratio"] is not None and abs(r["ratio"] - 1) > TOLERANCE]
    unheld = [r for r in rows if r.get("unconfirmed")]
    missed = [r for r in rows if not _reproduced(r)]
    if not rows:
        verdict = "no point measured in both runs to compare"
    elif missed:
        verdict = (
            f"{len(missed)} of {len(rows)} points did not reproduce ({len(moved)} moved more "
            f"than {TOLERANCE:.0%}, {len(unheld)} not confirmed in one run or both)"
        )
    else:
        verdict = f"every wall within {TOLERANCE:.0%}"
    lines.append(
        f"Against [{found['previous']}]({found['previous']}) (started "
        f"{found['previous_started_at']}): {verdict}; {machine}."
    )
    if not found["points"]:
        return lines  # a table with no row is a header that says nothing
    lines += ["", "| point | then | now | now / then |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        then, now = (
            f"{r[run]:,}" + (" (not confirmed)" if run in r.get("unconfirmed", []) else "")
            for run in ("then", "now")
        )
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['point']} | {then} | {now} | {ratio} |")
    return lines


def _reproduced(row: dict[str, Any]) -> bool:
    ratio = row["ratio"]
    return ratio is not None and abs(ratio - 1) <= TOLERANCE and not row.get("unconfirmed")
