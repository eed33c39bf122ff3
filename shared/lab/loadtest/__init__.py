"""`python -m lab.loadtest smoke|load|stress|capacity|target|soak|burst`: the k6 scenarios
behind make.

Reads BASE_URL, PHASE, TARGET, MIX, STEPS and RATE from the environment (as `make
load-test-target TARGET=1m` sets them), checks them, finds the phase running here, runs k6,
and writes `loadtests/results/<UTC timestamp>-<scenario>-<phase>.json` (the k6 summary, with a
.txt beside it) and `....meta.json` (the time range `make report` renders). When Prometheus
answers, k6's own metrics go there too (remote write), tagged with the test id and phase. A
capacity run without STEPS searches in two k6 passes; capacity, target and burst runs end by
naming their wall.

The package is the load generator: this module plans and runs a test (its command is
__main__.py, the plan and each k6 pass as data are _run); _k6 runs k6 and reads its summary,
_capacity searches a capacity run's rate, _run_wall and _walls name what ran out, _rows counts
the rows a run wrote, and soak, _soak_sampler and _soak_report are the soak. It imports the base
modules of lab and lab.docker (to find a phase Docker runs), never the native runtime: a native
phase is found through its state file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from lab import docker, state
from lab.loadtest import _capacity, _k6, _rows, _run_wall, _soak_report, _soak_sampler, soak
from lab.loadtest._run import LoadTest, Pass
from lab.state import RUN_DIR, RunState
from lab.topology import PHASES

SCENARIOS = ("smoke", "load", "stress", "capacity", "target", "soak", "burst")
# The burst of docs/03-queue.md: RATE arrivals per second for this long.
BURST_DURATION = "60s"
# The runs that end by naming their wall (lab.loadtest._run_wall).
WALLED = ("capacity", "target", "burst")
TARGETS = ("1k", "100k", "1m")
MIX_PRESETS = ("none", "realistic")
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
_DURATION = re.compile(r"(\d+(ms|s|m|h))+")
_MIX_PART = re.compile(r"(invalid|duplicate)=(\d+(\.\d+)?)")


class UsageError(ValueError):
    """A bad argument or variable; the message is the one line the user sees."""


def check_mix(raw: str) -> str:
    if raw in MIX_PRESETS:
        return raw
    shares: dict[str, float] = {}
    for part in raw.split(","):
        match = _MIX_PART.fullmatch(part.strip())
        if not match or match.group(1) in shares or float(match.group(2)) > 1:
            raise UsageError(f"MIX={raw!r}: use none, realistic, or invalid=0.05,duplicate=0.02")
        shares[match.group(1)] = float(match.group(2))
    if sum(shares.values()) > 1:
        raise UsageError(f"MIX={raw!r}: the shares add up to more than 1")
    return raw


def check_steps(raw: str) -> str:
    """STEPS=100,200,400: increasing whole arrival rates per second (profiles.js's rule)."""
    parts = [part.strip() for part in raw.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts) or any(
        int(b) <= int(a) for a, b in itertools.pairwise(parts)
    ):
        raise UsageError(
            f"STEPS={raw}: increasing whole arrival rates per second, like 100,200,400"
        )
    return ",".join(parts)


def running_stack(run_dir: Path, env: Mapping[str, str] = os.environ) -> RunState | None:
    """The phase running here: the native stack's state when its supervisor is alive, else
    the phase Docker runs (found through `docker compose`, lab.docker). RUNTIME=native or
    RUNTIME=docker looks at that runtime only."""
    runtime = env.get("RUNTIME", "")
    native = state.read(run_dir) if runtime != "docker" else None
    return native or (docker.running() if runtime != "native" else None)


def detect_phase(env: Mapping[str, str], running: RunState | None) -> str:
    phase = env.get("PHASE", "")
    if phase:
        if phase not in PHASES:
            raise UsageError(f"PHASE={phase!r}: use {', '.join(PHASES)}")
        return phase
    if running is not None and running.phase in PHASES:
        return running.phase
    raise UsageError(
        "no phase is running here, natively or with Docker: start one with `make phase1`, "
        "or name the one you test with PHASE=phase1|phase2|phase3|phase4"
    )


def default_base_url(running: RunState | None) -> str:
    return (running.entry_url if running else None) or DEFAULT_BASE_URL


def default_prometheus(running: RunState | None) -> str:
    return (running.url("prometheus") if running else None) or DEFAULT_PROMETHEUS


def plan(
    scenario: str,
    env: Mapping[str, str],
    *,
    results: Path,
    state: RunState | None,
    duration: str | None = None,
    now: datetime | None = None,
) -> LoadTest:
    """Everything checked before k6 starts, so a bad argument costs nothing."""
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}: use {', '.join(SCENARIOS)}")
    try:
        base_url = _k6.check_base_url(env.get("BASE_URL") or default_base_url(state))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    phase = detect_phase(env, state)
    variables = {"BASE_URL": base_url, "PHASE": phase, "MIX": check_mix(env.get("MIX") or "none")}
    target = env.get("TARGET", "")
    if scenario == "target":
        if target.lower() not in TARGETS:
            raise UsageError(f"TARGET={target!r}: use TARGET=1k, 100k or 1m")
        variables["TARGET"] = target.lower()
    elif target:
        raise UsageError(f"TARGET={target} only applies to `target`, not to {scenario}")
    duration = duration or env.get("DURATION") or None
    if duration is not None:
        if scenario not in ("smoke", "soak"):
            raise UsageError(
                f"a duration applies to smoke and soak only; {scenario} has its own profile"
            )
        if not _DURATION.fullmatch(duration):
            raise UsageError(f"duration {duration!r}: use a k6 duration like 5s or 2m")
        variables["DURATION"] = duration
    if scenario == "soak":
        try:
            variables.update(soak.variables(env, phase, variables.get("DURATION", "30m")))
        except soak.SoakError as exc:
            raise UsageError(str(exc)) from None
    steps = env.get("STEPS", "")
    if scenario == "capacity" and steps:
        variables["STEPS"] = check_steps(steps)
    elif steps:
        raise UsageError(f"STEPS={steps} only applies to capacity, not to {scenario}")
    if scenario == "burst":
        rate = env.get("RATE", "")
        if not rate.isdigit() or int(rate) < 1:
            raise UsageError(
                f"RATE={rate!r}: the burst needs arrivals per second, like RATE=1000 "
                "(1.5 times what phase 2 held in your capacity run)"
            )
        variables.update(RATE=rate, DURATION=BURST_DURATION)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    test_id = f"{stamp}-{scenario}-{phase}"
    # The run id is part of every email: random, so two runs never collide even in one second.
    variables["RUN_ID"] = f"{test_id.lower()}-{secrets.token_hex(2)}"
    summary = results / f"{test_id}.json"
    variables["SUMMARY_JSON"] = str(summary)
    prometheus = env.get("PROMETHEUS_URL") or default_prometheus(state)
    return LoadTest(
        scenario=scenario,
        phase=phase,
        base_url=base_url,
        test_id=test_id,
        variables=variables,
        summary=summary,
        meta=results / f"{test_id}.meta.json",
        prometheus=prometheus.rstrip("/") if _k6.answers(f"{prometheus}/-/ready") else None,
        database_url=(
            state.database_url if state and base_url == default_base_url(state) else None
        ),
        state=state,
    )


def k6_environment(p: LoadTest, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    if p.prometheus:
        env["K6_PROMETHEUS_RW_SERVER_URL"] = f"{p.prometheus}/api/v1/write"
        env["K6_PROMETHEUS_RW_TREND_STATS"] = "p(95),p(99)"
    return env


def run(p: LoadTest, *, quiet: bool = False) -> int:
    """Run k6 (twice for a capacity search) and write the meta file (also when k6 fails or is
    interrupted: the time range of a failed run is exactly what one wants to look at)."""
    if p.scenario == "capacity" and "STEPS" not in p.variables:
        return _capacity.search(p, lambda q: run_pass(q, quiet=quiet), write_meta)
    done = run_pass(p, quiet=quiet)
    write_meta(p, done.started, done.ended)
    if not done.rows_ok:
        return 1
    if p.scenario == "capacity" and done.answered:
        return _capacity.result(json.loads(p.summary.read_text()), p.summary)
    if p.scenario == "burst" and done.code == _k6.THRESHOLDS_CROSSED:
        # A burst above a phase's wall is meant to break its SLO there; what it asks is
        # whether every acknowledged signup survived, which the row count answered.
        counted = "every acknowledged signup is a row" if p.database_url else "rows not counted"
        print(f"burst: the SLO broke during the burst ({counted}). Summary: {p.summary}")
        return 0
    if done.code == _k6.THRESHOLDS_CROSSED:
        print(f"SLO thresholds crossed; summary: {p.summary}", file=sys.stderr)
    elif done.code != 0:
        print(f"k6 exited with {done.code}; see its output above", file=sys.stderr)
    else:
        print(f"summary: {p.summary}")
    return done.code


def run_pass(p: LoadTest, *, quiet: bool = False) -> Pass:
    """k6 once, with the soak's sampler or the wall's around it; the summary gets the wall
    and the row count."""
    soak_sampler, wall_sampler = None, None
    if p.scenario == "soak":
        try:
            native = soak.check_native(p.phase, p.state)
        except soak.SoakError as exc:
            raise UsageError(str(exc)) from None
        soak_sampler = _soak_sampler.Sampler(
            native.pids(),
            soak.seconds(p.variables["DURATION"]),
            native.database_url,
            native.url("redis"),
        )
    p.summary.parent.mkdir(parents=True, exist_ok=True)
    if p.scenario in WALLED:
        wall_sampler = _run_wall.WallSampler(p.state.containers_url if p.state else None)
    outputs = ("experimental-prometheus-rw",) if p.prometheus else ()
    where = f"k6 metrics to {p.prometheus}" if p.prometheus else "no Prometheus answering"
    print(f"{p.scenario} against {p.base_url} ({p.phase}), test id {p.test_id}; {where}")
    args = _k6.command(
        p.scenario,
        p.variables,
        tags={"testid": p.test_id, "phase": p.phase},
        outputs=outputs,
        quiet=quiet,
    )
    if soak_sampler is not None:
        soak_sampler.start()
    started = time.time()
    process = subprocess.Popen(args, env=k6_environment(p, os.environ))
    if wall_sampler is not None:
        wall_sampler.start(process.pid)
    code = _wait(process)
    ended = time.time()
    if soak_sampler is not None:
        soak_sampler.stop()
    if wall_sampler is not None:
        wall_sampler.stop()
    answered = code in (0, _k6.THRESHOLDS_CROSSED) and p.summary.exists()
    if soak_sampler is not None and p.summary.exists():
        code = _soak_report.finish(p.summary, soak_sampler, code)
    if wall_sampler is not None and answered:
        name_wall(p, wall_sampler, ended, crossed=code == _k6.THRESHOLDS_CROSSED)
    if answered and p.database_url:
        persisted = verify(p)
        if persisted.missing:
            print(f"error: {persisted.describe()}", file=sys.stderr)
            return Pass(code, started, ended, rows_ok=False, answered=answered)
    return Pass(code, started, ended, answered=answered)


def write_meta(p: LoadTest, started: float, ended: float, **extra: object) -> None:
    meta = {
        "scenario": p.scenario,
        "phase": p.phase,
        "base_url": p.base_url,
        "started_at": round(started, 3),
        "ended_at": round(ended, 3),
        "test_id": p.test_id,
        **extra,
    }
    p.meta.write_text(json.dumps(meta, indent=2) + "\n")


def name_wall(p: LoadTest, sampler: _run_wall.WallSampler, ended: float, *, crossed: bool) -> None:
    """Cut the CPU readings at the summary's steps, judge them, and write the verdict into
    the summary (JSON and text) and to the terminal."""
    data = json.loads(p.summary.read_text())
    windows: list[_run_wall.Window] = []
    if p.scenario == "capacity":
        windows.extend(_run_wall.capacity_windows(data, ended))
    elif (span := _run_wall.run_window(data, ended)) is not None:
        windows.append(("run", None, *span))
    wall = _run_wall.report(sampler, windows)
    data.setdefault("lab", {})["wall"] = wall
    p.summary.write_text(json.dumps(data, indent=1))
    # k6's exit code already said whether the SLO broke (a threshold crossed).
    broke = crossed or any(w["label"] == "broke" for w in wall["windows"])
    text = _run_wall.describe(wall, broke=broke)
    print(text)
    txt = p.summary.with_suffix(".txt")
    if txt.exists():
        txt.write_text(txt.read_text() + "\n" + text + "\n")


def _wait(process: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached k6 too (same process group): it stops and still writes its
            # summary, so wait for it (a second Ctrl-C makes k6 stop at once).
            continue


def verify(p: LoadTest) -> _rows.Persisted:
    """Count this run's rows against k6's acknowledged signups; record it in the summary."""
    assert p.database_url is not None
    data = json.loads(p.summary.read_text())
    acknowledged = int(
        data["metrics"].get("signups_acknowledged", {}).get("values", {}).get("count", 0)
    )
    print(f"counting this run's rows in PostgreSQL ({acknowledged:,} acknowledged) ...", flush=True)
    persisted = _rows.wait_for_rows(p.database_url, p.variables["RUN_ID"], acknowledged)
    data.setdefault("lab", {})["persisted"] = persisted.as_dict()
    p.summary.write_text(json.dumps(data, indent=1))
    text = p.summary.with_suffix(".txt")
    if text.exists():
        text.write_text(text.read_text() + persisted.describe() + "\n")
    print(persisted.describe())
    return persisted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.loadtest", description=__doc__)
    parser.add_argument("scenario", help=", ".join(SCENARIOS))
    parser.add_argument(
        "--duration", help="smoke only: run this long instead of 30s (like 5s), for tests"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(os.environ.get("LOADTEST_RESULTS_DIR", _k6.RESULTS)),
        help="where summaries and meta files go (default loadtests/results)",
    )
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no k6 progress output")
    args = parser.parse_args(argv)
    try:
        p = plan(
            args.scenario,
            os.environ,
            results=args.results_dir,
            state=running_stack(args.run_dir),
            duration=args.duration,
        )
        return run(p, quiet=args.quiet)
    except (UsageError, _k6.K6NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
