"""`make bench PART=shed`: phase 1 shedding by wait against never refusing, in one run.

Phase 1 natively under its compose limits, monitoring left out, k6 on the host, as
docs/01-monolith.md's "Past the wall" section describes. Two configurations of the app, the
only difference between them:

- `by wait`: the defaults: refuse a signup when the wait it can expect for a connection is
  past the target, once the queue stood (shared/signup/_shedding.py);
- `no limit`: never refuse (SIGNUP_POOL_WAIT_TARGET_MS=off, SIGNUP_POOL_MAX_WAITING=0): every
  request queues, however long.

First capacity runs (20 s steps), the two configurations alternated three times, each on a
fresh stack: the highest step each held within the SLO, and every 503 below it. Then twice the
median rate `no limit` held, for 30 s, and a quarter of it for 20 s after, in one k6 run
(loadtests/overload.js): how fast the 503s come back, how the served signups fare (as k6 saw
them and inside the app), what limited the rate, and how soon after the overload the 503s stop.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.bench import _probe
from lab.bench._targets import observers
from lab.loadtest import _k6, _run_wall
from lab.native.stack import Stack, running
from lab.topology import REPO, load

CONFIGS: dict[str, dict[str, str]] = {
    "by wait": {},
    "no limit": {"SIGNUP_POOL_WAIT_TARGET_MS": "off", "SIGNUP_POOL_MAX_WAITING": "0"},
}
# Up to 2,400: a run whose both configurations hold the top step cannot rank them.
STEPS = "1000,1200,1400,1600,1800,2000,2200,2400"
RUNS = 3
OVERLOAD_S, AFTER_S = 30, 20


def _environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PHASE": "phase1", "PROMETHEUS_URL": "http://127.0.0.1:9", **extra}


def capacity(base_url: str, steps: str, work: Path) -> dict[str, Any]:
    """One `lab.loadtest capacity` run; its per-step verdicts from the k6 summary."""
    results = work / "capacity"
    env = _environment(
        BASE_URL=base_url, STEPS=steps, STEP_DURATION="20s", LOADTEST_RESULTS_DIR=str(results)
    )
    subprocess.run([sys.executable, "-m", "lab.loadtest", "capacity"], env=env, check=False)
    summaries = sorted(results.glob("*-capacity-phase1.json"))
    if not summaries:
        raise ShedError(f"the capacity run wrote no k6 summary in {results}: see its output")
    verdict: dict[str, Any] = json.loads(summaries[-1].read_text())["lab"]["capacity"]
    return verdict


class ShedError(RuntimeError):
    """A k6 run of the part left nothing to read; the message says where to look."""


# (Unix seconds the answer came, k6 scenario, HTTP status, ms it took)
Answer = tuple[float, str, str, float]


def answers(path: Path) -> list[Answer]:
    """Every POST /signup in a k6 CSV output written with K6_CSV_TIME_FORMAT=unix_milli."""
    if not path.exists():
        raise ShedError(f"k6 wrote no CSV at {path}: see its output")
    with path.open() as file:
        return [
            (float(r["timestamp"]) / 1000, r["scenario"], r["status"], float(r["metric_value"]))
            for r in csv.DictReader(file)
            if r["metric_name"] == "http_req_duration" and r["name"] == "POST /signup"
        ]


def p95(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1) if ordered else None


def overload_verdict(found: list[Answer]) -> dict[str, Any]:
    """Per status: count and p95 during the overload (k6's scenario `over`); statuses after
    it (`after`); the last 503 after the overload ended, in seconds from the moment the first
    `after` request was sent (None: no 503 after it). One run, one clock."""
    over = [a for a in found if a[1] == "over"]
    after = [a for a in found if a[1] == "after"]
    if not over:
        raise ShedError("the overload's k6 run answered no signup")
    ended = min((t - ms / 1000 for t, _, _, ms in after), default=max(t for t, *_ in over))
    late = [t - ended for t, _, status, _ in after if status == "503"]
    return {
        "overload": {
            status: {
                "count": sum(1 for _, _, s, _ in over if s == status),
                "p95_ms": p95([ms for _, _, s, ms in over if s == status]),
            }
            for status in sorted({s for _, _, s, _ in over})
        },
        "after": {
            status: sum(1 for _, _, s, _ in after if s == status) for status in {"201", "503"}
        },
        "last_503_after_s": round(max(late), 2) if late else None,
        "span": [round(min(t - ms / 1000 for t, _, _, ms in over), 3), round(ended, 3)],
    }


def overload(stack: Stack, rate: int, work: Path) -> dict[str, Any]:
    """One k6 run of loadtests/overload.js; the k6 view per status, and the app's own: its
    p95 for the signups it served (its histogram: time inside the app, the pool wait
    included) and the wall over the overload's seconds (lab.loadtest._run_wall)."""
    out = work / "overload.csv"
    env = _environment(
        BASE_URL=stack.url,
        RATE=str(rate),
        DURATION=f"{OVERLOAD_S}s",
        AFTER=f"{AFTER_S}s",
        K6_CSV_TIME_FORMAT="unix_milli",
        SUMMARY_JSON=str(work / "overload.summary.json"),
    )
    command = [_k6.binary(), "run", "--quiet", "--out", f"csv={out}", "loadtests/overload.js"]
    inside = [stack.url]
    before = _probe.Histogram.scrape(inside, "signup_request_duration_seconds", status_code="201")
    sampler = _run_wall.WallSampler(f"http://127.0.0.1:{stack.ctx.ports.containers}")
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    sampler.start(process.pid)
    process.wait()
    sampler.stop()
    served = _probe.Histogram.scrape(inside, "signup_request_duration_seconds", status_code="201")
    verdict = overload_verdict(answers(out))
    in_app = served.minus(before).quantile(0.95)
    wall = sampler.window(*verdict["span"])
    return {
        "rate": rate,
        **verdict,
        "served_p95_in_app_ms": None if in_app is None else round(in_app * 1000, 1),
        "wall": wall,
    }


def held(verdict: Mapping[str, Any]) -> int:
    """The highest step that held below the first that broke: a step that held above a broken
    one is noise, not capacity (k6's own verdict takes the highest step that held anywhere)."""
    rate = 0
    for step in verdict["steps"]:
        if not step["ok"]:
            break
        rate = step["rate"]
    return rate


def held_without_503(verdict: Mapping[str, Any]) -> bool:
    """No step at or below the rate held lost a signup to an error."""
    return all(s["error_rate"] == 0 for s in verdict["steps"] if s["rate"] <= held(verdict))


def medians(result: Mapping[str, Any]) -> dict[str, float]:
    return {
        config: statistics.median(held(r) for r in result["capacity"] if r["config"] == config)
        for config in CONFIGS
    }


def collect(work: Path, steps: str = STEPS, runs: int = RUNS) -> dict[str, Any]:
    skip = observers(load("phase1"))
    result: dict[str, Any] = {"steps": steps, "capacity": [], "overload": []}
    for i in range(runs):
        for config, environment in CONFIGS.items():
            print(f"shed: capacity, {config}, run {i + 1}/{runs}", flush=True)
            folder = work / f"capacity-{i}-{config.replace(' ', '-')}"
            with running("phase1", folder, environment={"app": environment}, skip=skip) as stack:
                verdict = capacity(stack.url, steps, folder)
            result["capacity"].append({"config": config, "run": i + 1, **verdict})
    result["median_held"] = medians(result)
    rate = int(2 * result["median_held"]["no limit"]) or 2 * int(steps.split(",")[0])
    for i, config in enumerate(["by wait"] * runs + ["no limit"]):
        print(f"shed: {rate}/s for {OVERLOAD_S} s, then {rate // 4}/s, {config}", flush=True)
        folder = work / f"overload-{i}"
        with running("phase1", folder, environment={"app": CONFIGS[config]}, skip=skip) as stack:
            result["overload"].append({"config": config, **overload(stack, rate, folder)})
    return result


def _step(step: Mapping[str, Any]) -> str:
    if not step["requests"]:  # k6 stopped in the ramp up to it
        return f"{step['rate']}: broken {step.get('stopped', 'before it began')}"
    text = f"{step['rate']}: {step['p95_ms']:.0f} ms, {step['error_rate'] * 100:.2f} %"
    return text + (
        "" if step["ok"] else f" (broken{', ' + step['stopped'] if 'stopped' in step else ''})"
    )


def markdown(result: Mapping[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "Written by `make bench PART=shed` (shared/lab/bench/_shed.py says how). Capacity steps",
        f"of 20 s at {result['steps']} signups/s; a step holds when p95 < 100 ms, errors",
        "< 0.1 % and under 1 % of arrivals dropped.",
        "",
        "| configuration | run | held /s | no error at or below it | steps: p95 ms, errors |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for r in result["capacity"]:
        steps = "; ".join(_step(s) for s in r["steps"])
        clean = "yes" if held_without_503(r) else "no"
        lines.append(f"| {r['config']} | {r['run']} | {held(r)} | {clean} | {steps} |")
    both = ", ".join(f"{c}: {v:g}/s" for c, v in medians(result).items())
    lines += ["", f"Median held: {both}.", ""]
    lines += [
        f"Overload: the rate for {OVERLOAD_S} s, then a quarter of it for {AFTER_S} s.",
        "",
        "The served p95 is k6's (from sending to the answer) and the app's own (its histogram,",
        "the pool wait included, in buckets); `limited by` judges each service's CPU against its",
        "quota, the machine's and k6's over the overload's seconds, as every load test does.",
        "",
        "| configuration | rate /s | 503s | 503 p95 ms | served | served p95 ms | served p95 "
        "in the app ms | last 503 after | limited by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for o in result["overload"]:
        shed = o["overload"].get("503", {"count": 0, "p95_ms": None})
        served = o["overload"].get("201", {"count": 0, "p95_ms": None})
        last = "none" if o["last_503_after_s"] is None else f"{o['last_503_after_s']} s"
        wall = (o.get("wall") or {}).get("limited_by") or {}
        lines.append(
            f"| {o['config']} | {o['rate']} | {shed['count']} | {shed['p95_ms']} | "
            f"{served['count']} | {served['p95_ms']} | {o.get('served_p95_in_app_ms', '-')} | "
            f"{last} | {wall.get('evidence', '-')} |"
        )
    return "\n".join(lines) + "\n"


def main(out: Path, work: Path, host: str, date: str, quick: bool) -> list[Path]:
    """Measure, then write <date>-<host>-shed(.json, .md) into `out`."""
    result = collect(work, steps="300,600", runs=1) if quick else collect(work)
    result["bench"] = {
        "part": "shed",
        "host": host,
        "date": date,
        "quick": quick,
        "cpu_count": os.cpu_count(),
    }
    stem = f"{date}-{host}-shed" + ("-quick" if quick else "")
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    return [json_path, replot(json_path)]


def replot(json_path: Path) -> Path:
    """The run's Markdown, again, from its JSON (the verdicts are computed from the steps)."""
    result = json.loads(json_path.read_text())
    bench = result["bench"]
    title = f"Phase 1: shedding by wait against never refusing ({bench['host']}, {bench['date']})"
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(result, title))
    return md_path
