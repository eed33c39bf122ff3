"""The bench from start to end: the scale model, then the whole machine, then the JSON,
Markdown and plots.

First the scale model (lab.bench._scale): every service under a small CPU quota, so each
phase's own wall shows. Then the whole machine: every service under the compose file's own
limits, with the ceilings (HTTP without a database, PostgreSQL insert and COPY rates), which
measures this machine with its load generator on it, and says so.

Everything it starts lives in one temporary folder on free ports and is stopped on the way
out, also on Ctrl-C or SIGTERM (both become KeyboardInterrupt, so every `with` unwinds); k6
runs in a cgroup of its own, emptied on the way out too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.bench import (
    _cost,
    _cost_plot,
    _failover,
    _machine,
    _plan,
    _plots,
    _report,
    _reproduce,
    _scale,
    _scale_plots,
    _shed,
)
from lab.bench._disturbance import Probe
from lab.bench._plan import Plan
from lab.bench._progress import Progress
from lab.bench._steps import K6Group, StepFailed
from lab.bench._targets import PHASE_TARGETS, Bench
from lab.loadtest import _k6
from lab.native import _cgroup
from lab.native.postgres import bindir
from lab.native.supervisor import StartError
from lab.topology import REPO

OUT = REPO / "docs" / "results"
# What each part measures, in the line a run starts with.
PARTS = {
    "scale": "the scale model (phases 1-3, app replicas added one by one, two bursts; then "
    "phase 3 against phase 4 at a lower Redis quota per node)",
    "cluster": "the scale model's phase 3 against phase 4 alone, at a lower Redis quota per node",
    "machine": "the whole machine (HTTP ceiling, {phases}, PostgreSQL insert and COPY ceilings)",
    "cost": "CPU per signup of bare HTTP, phase 1 and phase 3 at one rate",
}


def host_facts(plan: Plan) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    k6 = subprocess.run([_k6.binary(), "version"], capture_output=True, text=True, check=False)
    pg = subprocess.run(
        [str(bindir() / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    now = datetime.now(UTC)
    return {
        "host": socket.gethostname(),
        "date": now.strftime("%Y-%m-%d"),
        "started_at": now.isoformat(timespec="seconds"),
        "quick": plan.quick,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "k6": k6.stdout.strip().splitlines()[0] if k6.stdout else "unknown",
        "postgres": pg.stdout.strip(),
        "cgroups": _cgroup.available() or "per-service CPU and memory limits applied",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "plan": dataclasses.asdict(plan),
        "slo": {
            "p95_ms": _plan.P95_MS,
            "error_rate": _plan.ERROR_RATE,
            "dropped_share": _plan.DROPPED_SHARE,
        },
        "note": _report.NOTE.format(cores=os.cpu_count()),
    }


def collect(
    plans: tuple[Plan, Plan], progress: Progress, work: Path, phases: list[str], parts: set[str]
) -> dict[str, Any]:
    scale_plan, plan = plans
    results: dict[str, Any] = {"bench": host_facts(plan), "ceilings": {}, "phases": {}}
    results["bench"]["part"] = "all" if len(parts) > 1 else next(iter(parts))
    results["bench"]["scale_plan"] = dataclasses.asdict(scale_plan)
    with K6Group() as k6, Probe() as probe:
        bench = Bench(progress, work, k6, probe)
        if "scale" in parts or "cluster" in parts:
            only = "scale" not in parts
            results["scale_model"] = _scale.collect(scale_plan, bench, only_cluster=only)
        if "machine" in parts:
            results.update(_machine.collect(plan, bench, phases))
        if "cost" in parts:
            cost_plan = _cost.QUICK if plan.quick else _cost.FULL
            try:
                results["cost"] = _cost.collect(cost_plan, bench)
            except (StartError, StepFailed, TimeoutError) as exc:
                # Last in a run of over an hour: the parts before it must still be written.
                progress.warn(f"CPU per signup failed: {exc}")
                results["cost"] = {"status": "failed", "error": str(exc)}
    results["bench"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    _report.add_ratios(results)
    return results


def file_safe(host: str) -> str:
    """A host name as part of a results file's name."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in host)


def results_stem(bench: dict[str, Any], out: Path) -> str:
    """A run's file name in `out`, without its suffix: date, host, and the part when not all.

    A second full run of a part the same day keeps the first and gets its start time (UTC)
    after the name: two runs hours apart are how a wall is shown to reproduce, and the later
    one is compared with the earlier. A quick run replaces the day's quick run."""
    part = bench.get("part", "all")
    stem = f"{bench['date']}-{file_safe(bench['host'])}" + ("" if part == "all" else f"-{part}")
    if bench["quick"]:
        return stem + "-quick"
    path = out / f"{stem}.json"
    if not path.exists():
        return stem
    try:
        earlier = json.loads(path.read_text())["bench"]["started_at"]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = None  # a file this bench cannot read is still not its to overwrite
    if earlier == bench["started_at"]:
        return stem  # this very run, written again
    return stem + "-" + datetime.fromisoformat(bench["started_at"]).strftime("%H%M")


def write(results: dict[str, Any], out: Path) -> list[Path]:
    bench = results["bench"]
    out.mkdir(parents=True, exist_ok=True)
    stem = results_stem(bench, out)
    if "scale_model" in results:
        # Against the last run of this part already in `out` (a replot keeps what was found).
        compared = _reproduce.compare(results, out, skip=f"{stem}.json")
        results["scale_model"]["reproduction"] = compared
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    return [json_path, *draw(results, out, stem)]


def draw(results: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """The Markdown and the plots of a run, beside its JSON."""
    plots = {
        **_scale_plots.draw(results, out, stem),
        **_plots.draw(results, out, stem),
        **_cost_plot.draw(results, out, stem),
    }
    md_path = out / f"{stem}.md"
    cost = _cost.markdown(results["cost"]) if "cost" in results else []
    md_path.write_text(_report.markdown(results, plots, cost))
    return [md_path, *(out / name for name in plots.values())]


def replot(path: Path) -> int:
    """Draw a committed run's Markdown and plots again, without measuring anything."""
    try:
        results = json.loads(path.read_text())
        if not isinstance(results, dict) or "host" not in results.get("bench", {}):
            raise ValueError("it has no bench section")
    except (OSError, ValueError) as exc:
        print(f"error: {path} is not a bench result: {exc}", file=sys.stderr)
        return 2
    if results["bench"].get("part") == "shed":
        print(f"  {_shed.replot(path)}")
        return 0
    if results["bench"].get("part") == "failover":
        print("\n".join(f"  {written}" for written in _failover.replot(path)))
        return 0
    _report.add_ratios(results)
    for written in draw(results, path.parent, path.stem):
        print(f"  {written}")
    return 0


def _alone(part: str, out: Path, quick: bool) -> int:
    """A part that runs by itself, with its own results file: shed or failover. Its folder of
    run logs is kept when it fails, and the path printed."""
    host = file_safe(socket.gethostname())
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    work = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    try:
        if part == "shed":
            written = _shed.main(out, work, host, date, quick)
        else:
            written = _failover.main(out, work, host, date, quick)
    except (_shed.ShedError, _failover.FailoverError) as exc:
        print(f"error: {exc}\nthe runs' logs are kept in {work}", file=sys.stderr)
        return 1
    except BaseException:
        print(f"the runs' logs are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    print("\n".join(f"  {path}" for path in written))
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="everything briefly (about 9 minutes)")
    parser.add_argument("--out", type=Path, default=OUT, help="default docs/results")
    parser.add_argument(
        "--phases",
        default=None,
        help="comma-separated phases of the whole-machine part (default: all; with --quick, "
        "phase1,phase3: phase 2's path is phase 1's code, and the scale model runs phase 2)",
    )
    parser.add_argument(
        "--part",
        choices=("all", *PARTS, "shed", "failover"),
        default="all",
        help="the scale model, the whole machine, CPU per signup at one rate, or all three "
        "(default); `cluster`: the scale model's phase 3 against phase 4 alone; `shed` "
        "alone: phase 1 shedding by wait against never refusing; `failover` alone: phase 4 "
        "losing a primary's host under load, with and without WAIT (root)",
    )
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="JSON",
        help="measure nothing: draw that run's Markdown and plots again (after a plot changed)",
    )
    args = parser.parse_args(argv)
    if args.replot is not None:
        return replot(args.replot)
    if args.part in ("shed", "failover"):
        return _alone(args.part, args.out, args.quick)
    # The whole scale model holds the cluster comparison: `cluster` is it alone.
    parts = set(PARTS) - {"cluster"} if args.part == "all" else {args.part}
    chosen = args.phases or ("phase1,phase3" if args.quick else ",".join(PHASE_TARGETS))
    phases = [p.strip() for p in chosen.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASE_TARGETS]
    if unknown:
        print(
            f"error: unknown phase {', '.join(unknown)}: use {', '.join(PHASE_TARGETS)}",
            file=sys.stderr,
        )
        return 2
    plan = _plan.QUICK if args.quick else _plan.FULL
    scale_plan = _plan.SCALE_QUICK if args.quick else _plan.SCALE
    try:
        _k6.binary()
    except _k6.K6NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    # Both stop the bench the same way, also when it was started with SIGINT ignored (a
    # shell's background job): Ctrl-C is how a person stops it, and the test does the same.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    # The whole bench's length; a part alone takes its share (the cluster part about half).
    kind = "quick: seconds per step, a smoke test" if plan.quick else "full"
    if args.part == "all" and not plan.quick:
        kind += ": 75 to 90 minutes"
    what = [PARTS[p].format(phases=", ".join(phases)) for p in PARTS if p in parts]
    print(f"bench ({kind}): {'; then '.join(what)}. k6 runs on this host", flush=True)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
            results = collect((scale_plan, plan), progress, Path(tmp), phases, parts)
    except KeyboardInterrupt:
        progress.warn("interrupted: everything the bench started has been stopped")
        return 130
    results["bench"]["duration_s"] = round(time.monotonic() - started, 1)
    written = write(results, args.out)
    progress.section("done", "results written")
    for path in written:
        print(f"  {path}")
    failed = [n for n, r in results["phases"].items() if r.get("status") == "failed"]
    failed += [f"scale model {n}" for n in results.get("scale_model", {}).get("errors", {})]
    if results["ceilings"].get("http", {}).get("status") == "failed":
        failed.append("http_ceiling")
    if results.get("cost", {}).get("status") == "failed":
        failed.append("CPU per signup")
    if failed:
        print(f"error: {', '.join(failed)} failed; see above", file=sys.stderr)
        return 1
    return 0
