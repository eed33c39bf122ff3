"""How a capacity run finds its rate and ends: with the rate it held, where it broke, and why.

Without STEPS the run searches the way the bench does, so it fits whatever machine it runs
on: a coarse pass doubles the rate from 50/s until the SLO breaks, then a fine pass walks four
steps between the last rate that held and the one that broke (below 50/s when even that broke).
With STEPS it walks that list once.

k6 exits 99 when a threshold is crossed, and a capacity run is meant to cross one: it climbs
until the SLO breaks. Read as a failure, every such run ended in `make: *** Error 99`, which
looked like a crash. Here the summary's verdict decides instead.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.loadtest._run import LoadTest, Pass

# Also the default STEPS of loadtests/lib/profiles.js, for k6 run alone (a test holds them equal).
COARSE = (50, 100, 200, 400, 800, 1600, 3200, 6400)
FINE_STEPS = 4
# Below this gap (a share of the rate that held) a fine pass would measure noise.
FINE_GAP = 0.1


def fine_steps(held: int, broke: int) -> list[int]:
    """FINE_STEPS rates evenly between `held` and `broke`, rounded to figures a person reads
    (tens or fives when the steps are that wide); none when the gap is already small."""
    if broke - held <= max(FINE_GAP * held, 1):
        return []
    width = (broke - held) / (FINE_STEPS + 1)
    unit = 10 if width >= 20 else 5 if width >= 5 else 1
    rates = set()
    for k in range(1, FINE_STEPS + 1):
        rates.add(max(1, round((held + width * k) / unit) * unit))
    return sorted(r for r in rates if held < r < broke)


def search(
    p: LoadTest,
    run_pass: Callable[[LoadTest], Pass],
    write_meta: Callable[..., None],
) -> int:
    """The coarse pass, then the fine one; the answer (both passes' steps, the rate held, the
    wall) goes to the run's summary path, each pass's k6 summary beside it."""
    passes: list[tuple[str, LoadTest, Pass]] = []
    plan: list[tuple[str, list[int]]] = [("coarse", list(COARSE))]
    print(
        "capacity search: a coarse pass doubles the rate from 50/s until the SLO breaks, then "
        "a fine pass steps between the last rate that held and the one that broke "
        "(STEPS=... walks your own list instead)"
    )
    while plan:
        name, rates = plan.pop(0)
        print(f"\n{name} pass: {', '.join(map(str, rates))} per second", flush=True)
        q = _pass(p, name, rates)
        done = run_pass(q)
        passes.append((name, q, done))
        if not done.answered or not done.rows_ok:
            write_meta(p, passes[0][2].started, done.ended, passes=_names(passes))
            if done.answered:
                return 1  # rows missing: run_pass said so
            print(f"k6 exited with {done.code}; see its output above", file=sys.stderr)
            return done.code or 1
        if name == "coarse":
            verdict = _verdict(q)
            held, broke = int(verdict.get("sustained_rate", 0)), _first_broken(verdict)
            if broke is not None and (fine := fine_steps(held, broke)):
                plan.append(("fine", fine))
    answer = combine([(name, json.loads(q.summary.read_text())) for name, q, _ in passes])
    answer["lab"].update(phase=p.phase, test_id=p.test_id, passes=_names(passes))
    p.summary.write_text(json.dumps(answer, indent=1))
    write_meta(p, passes[0][2].started, passes[-1][2].ended, passes=_names(passes))
    print()
    return result(answer, p.summary)


def combine(summaries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One verdict from the passes: every step (tagged with its pass) by rate, the highest
    rate any pass held before its own first break, the lowest broken rate above it, and the
    wall measured at those two steps."""
    steps: list[dict[str, Any]] = []
    held = 0
    walls: dict[tuple[str, int | None], dict[str, Any]] = {}
    problem = None
    for name, summary in summaries:
        lab = summary.get("lab", {})
        verdict = lab.get("capacity", {})
        steps.extend({**step, "pass": name} for step in verdict.get("steps", []))
        held = max(held, int(verdict.get("sustained_rate", 0)))
        wall = lab.get("wall") or {}
        problem = problem or wall.get("problem")
        for window in wall.get("windows", []):
            walls[(window["label"], window["rate"])] = window
    steps.sort(key=lambda s: (s["rate"], s["pass"]))
    broke = min((s["rate"] for s in steps if not s["ok"] and s["rate"] > held), default=None)
    windows = [w for key in (("held", held), ("broke", broke)) if (w := walls.get(key))]
    named = next((w for w in windows if w["label"] == "broke"), windows[-1] if windows else None)
    return {
        "lab": {
            "scenario": "capacity",
            "capacity": {"steps": steps, "sustained_rate": held, "broke_at": broke},
            "wall": {
                "windows": windows,
                "limited_by": named["limited_by"] if named else None,
                "problem": problem,
            },
        }
    }


def result(summary: dict[str, Any], path: Path) -> int:
    """A capacity run is meant to end where the SLO breaks: that is its answer, exit 0. When
    every step held it says to climb higher (exit 0 too: the run worked); it failed only when
    no step held (exit 1, with lower steps to try)."""
    lab = summary.get("lab", {})
    verdict = lab.get("capacity", {})
    steps, held = verdict.get("steps", []), int(verdict.get("sustained_rate", 0))
    broke = verdict.get("broke_at", _first_broken(verdict))
    wall = (lab.get("wall") or {}).get("limited_by")
    why = f"\n  {_wall_line(wall)}" if wall else ""
    if held and broke is not None:
        print(f"capacity: held {held}/s within the SLO; it broke at {broke}/s.{why}")
        print(f"Summary: {path}")
        return 0
    if held:
        print(f"capacity: every step held, up to {held}/s: try higher STEPS.{why}")
        print(f"Summary: {path}")
        return 0
    first = min((s["rate"] for s in steps), default=None)
    lower = ",".join(str(max(1, (first or 100) * k // 8)) for k in (1, 2, 3, 4, 6))
    print(
        f"capacity: the SLO broke at the first step ({first}/s), so no rate held. Start lower, "
        f"for example STEPS={lower}; if that breaks too, the phase is not serving: "
        f"`make status` and `make logs`.{why}\nSummary: {path}",
        file=sys.stderr,
    )
    return 1


def _wall_line(wall: dict[str, Any]) -> str:
    if wall.get("service"):
        return f"limited by {wall['service']}: {wall['evidence']}"
    return f"limited by no CPU: {wall['evidence']}"


def _first_broken(verdict: dict[str, Any]) -> int | None:
    return next((int(s["rate"]) for s in verdict.get("steps", []) if not s["ok"]), None)


def _verdict(q: LoadTest) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(q.summary.read_text()).get("lab", {}).get("capacity", {})
    return found


def _pass(p: LoadTest, name: str, rates: list[int]) -> LoadTest:
    variables = {
        **p.variables,
        "STEPS": ",".join(map(str, rates)),
        "RUN_ID": f"{p.variables['RUN_ID']}-{name}",
    }
    summary = p.summary.with_name(f"{p.summary.stem}.{name}.json")
    variables["SUMMARY_JSON"] = str(summary)
    return dataclasses.replace(p, variables=variables, summary=summary)


def _names(passes: list[tuple[str, LoadTest, Pass]]) -> dict[str, str]:
    return {name: q.summary.name for name, q, _ in passes}
