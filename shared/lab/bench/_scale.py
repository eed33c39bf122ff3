"""The scale model: every service under a small CPU quota, so each design meets its own wall.

On a small machine shared with the load generator, the machine runs out first and every
design looks the same. Here each service gets a quota (shared/scale-model.env: the same one
for the database in every phase, one per app replica) and the quotas leave the machine room,
so what runs out is a service: one app instance in phase 1, the database as phase 2 adds
replicas, and whatever comes next once phase 3 takes the database out of the request path.

Each phase is measured with 1, 2, 3 ... app replicas until one more adds less than
`plan.gain`; at the last count of phases 2 and 3 a burst at 1.5x phase 2's best follows.
Then phase 3 and phase 4 are swept again with every Redis node at the profile's
CLUSTER_REDIS_CPUS: can three primaries take more than one Redis at the same quota each? And
phase 4 once more at its best replica count, its cluster grown to four primaries first: does
the fourth move its wall?
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.bench import _burst, _disturbance, _plan
from lab.bench._plan import Plan
from lab.bench._report import latency, median
from lab.bench._scale_plots import GROWN
from lab.bench._settle import Settler
from lab.bench._steps import Runner, StepFailed
from lab.bench._targets import Bench, Measurement, Target, measure
from lab.loadtest import _walls
from lab.native.components import redis_cluster
from lab.native.stack import Stack
from lab.native.supervisor import StartError
from lab.topology import REPO

PROFILE = REPO / "shared" / "scale-model.env"
TITLES = {
    "phase1": "phase 1: one app, PostgreSQL",
    "phase2": "phase 2: nginx, app replicas, PgBouncer, PostgreSQL",
    "phase3": "phase 3: phase 2's path into a Redis stream, a batch writer behind it",
    "phase4": "phase 4: phase 3's path into a Redis Cluster, three primaries with a replica each",
}
# The profile's key for the per-node Redis quota of the phase 3 against phase 4 comparison.
CLUSTER_QUOTA = "CLUSTER_REDIS_CPUS"
# How long the disturbance probe is timed on the quiet machine before the first point.
QUIET_SECONDS = 5
# How long each point of the cluster comparison reads every service with no load offered.
IDLE_SECONDS, IDLE_QUICK = 10, 2


def profile(path: Path = PROFILE) -> dict[str, str]:
    """The quotas: KEY=VALUE lines (comments and blank lines allowed), as compose reads them."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value:
            raise ValueError(f"{path}:{number}: {line!r} is not KEY=VALUE")
        values[key] = value
    return values


def target(phase: str, replicas: int, quotas: dict[str, str]) -> Target:
    variables = {**quotas, "REPLICAS": str(replicas)}
    return Target(f"{phase}-x{replicas}", phase, TITLES[phase], variables=variables)


@dataclass
class Sweep:
    phase: str
    points: list[dict[str, Any]]
    burst: dict[str, Any] | None = None

    @property
    def best(self) -> int:
        """The highest rate that held: an unconfirmed point's rate did not, so it sets no bar."""
        return max((p["sustained_rate"] for p in self.points if p["confirmed"]), default=0)


def sweep(
    phase: str,
    plan: Plan,
    bench: Bench,
    quotas: dict[str, str],
    *,
    burst_rate: Callable[[int], int] | None = None,
    first_guess: int | None = None,
) -> Sweep:
    """Add app replicas one at a time while each adds at least `plan.gain`. `burst_rate`
    (from the best rate so far) asks for a burst at the last replica count."""
    result, progress = Sweep(phase, []), bench.progress
    top = 1 if phase == "phase1" else plan.max_replicas
    for replicas in range(1, top + 1):
        best_before = result.best
        if replicas == 1:
            start = first_guess
        else:
            # One more replica, if the wall is still the app, adds a replica's worth.
            last = result.points[-1]["sustained_rate"]
            start = max(10, round(0.9 * last * replicas / (replicas - 1)))

        def inside(
            stack: Stack, runner: Runner, m: Measurement, n: int = replicas, best: int = best_before
        ) -> Any:
            last_one = n == top or (n > 1 and m.sustained_rate < plan.gain * best)
            if not last_one or burst_rate is None:
                return {}
            rate = burst_rate(max(best, m.sustained_rate if m.confirmed else 0))
            if rate < 10:
                return {}  # nothing held anywhere: there is no best to burst above
            settle = Settler(stack, has_db=True, timeout=plan.settle_timeout)
            return {"burst": _burst.burst(stack, runner, settle, plan, progress, rate)}

        progress.note(f"-- {phase} with {replicas} app replica{'s' if replicas > 1 else ''}")
        m = measure(target(phase, replicas, quotas), plan, bench, start=start, inside=inside)
        point = point_result(replicas, m)
        result.points.append(point)
        wall = point["limited_by"] or "nothing at its quota"
        progress.result(f"{phase} x{replicas}: {m.sustained_rate:,}/s sustained, limited by {wall}")
        if "burst" in m.extras:
            result.burst = m.extras["burst"]
        if replicas > 1 and m.sustained_rate < plan.gain * best_before:
            progress.note(
                f"one more replica added less than {plan.gain - 1:.0%}: {phase} stops growing"
            )
            break
    return result


def point_result(replicas: int, m: Measurement) -> dict[str, Any]:
    """One point of a sweep, as the JSON keeps it."""
    wall = m.wall
    limit = wall.limited_by if wall else {"service": None, "evidence": "no step measured"}
    runs = [r for r in m.confirm if r.acknowledged]
    loads = [folded(r.load) for r in runs]
    services = sorted({s for load in loads for s in load})
    return {
        "replicas": replicas,
        "sustained_rate": m.sustained_rate,
        "confirmed": m.confirmed,
        "limited_by": limit["service"],
        "evidence": limit["evidence"],
        "evidence_step": {"rate": wall.rate, "held": wall.held, "load": wall.load}
        if wall
        else None,
        "latency_ms": latency(runs),
        # At the sustained rate: cores per service, k6's and the machine's.
        "cores": {s: median(load[s]["cores"] for load in loads if s in load) for s in services},
        "quota_cores": {
            s: next((load[s]["quota_cores"] for load in loads if s in load), None) for s in services
        },
        "cpu_ms_per_signup": {
            s: median(
                load[s]["cores"] * r.seconds / r.acknowledged * 1000
                for r, load in zip(runs, loads, strict=True)
                if s in load
            )
            for s in services
        },
        # With no load offered (`Plan.idle_seconds`): every service, each Redis node apart.
        "idle_cores": {s: v["cores"] for s, v in m.idle.items()},
        "idle_seconds": m.idle_seconds,
        "k6_cores": median(r.k6_cores for r in runs),
        "machine_cores": median(r.machine_cores for r in runs),
        # What the machine itself did during the confirming runs (lab.bench._disturbance).
        "machine": _disturbance.verdict([r.machine for r in m.confirm if r.machine]),
        # Acknowledged signups against rows over the whole point: none may be missing.
        "rows_check": m.extras.get("rows_check"),
        "runs": [r.as_dict() for r in m.confirm],
        "search": [s.as_dict() for s in m.steps],
    }


def folded(load: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A step's load with each Redis node (counted on its own, to find the wall) back under
    its service: a signup's CPU is the whole cluster's, primary and replica."""
    found: dict[str, dict[str, Any]] = {}
    for name, values in load.items():
        base, _, index = name.rpartition("-")
        service = base if base in _walls.PER_REPLICA and index.isdigit() else name
        if service not in found:
            found[service] = {"cores": 0.0, "quota_cores": 0.0}
        found[service]["cores"] = round(found[service]["cores"] + values["cores"], 4)
        quota = values.get("quota_cores")
        total = found[service]["quota_cores"]
        found[service]["quota_cores"] = (
            None if quota is None or total is None else round(total + quota, 4)
        )
    return found


def collect(plan: Plan, bench: Bench, *, only_cluster: bool = False) -> dict[str, Any]:
    """`scale_model` of the results: the quotas, every phase's points, the two bursts, and
    phase 3 against phase 4 at the profile's per-node Redis quota (`only_cluster`: that
    comparison alone)."""
    quotas, progress = profile(), bench.progress
    cluster_redis = quotas.pop(CLUSTER_QUOTA, None)
    progress.section(
        "scale model",
        "every service under a small CPU quota ("
        + ", ".join(f"{k}={v}" for k, v in quotas.items())
        + "); app replicas added until one more no longer helps",
    )
    found: dict[str, Any] = {"quotas": quotas, "machine_quiet": calibrate(bench)}
    errors: dict[str, str] = {}

    def guarded(label: str, phase: str, work: Callable[[], Sweep]) -> Sweep:
        try:
            return work()
        except (StartError, StepFailed, TimeoutError, OSError, redis_cluster.GrowError) as exc:
            # One broken phase must not lose the others' numbers; the bench exits 1.
            progress.warn(f"scale model, {label} failed: {exc}")
            errors[label] = f"{type(exc).__name__}: {exc}"
            return Sweep(phase, [])

    def run(label: str, phase: str, at: dict[str, str], **kwargs: Any) -> Sweep:
        return guarded(label, phase, lambda: sweep(phase, plan, bench, at, **kwargs))

    # The comparison also reads every point at no load: what sharding cannot divide.
    cluster_plan = replace(plan, idle_seconds=IDLE_QUICK if plan.quick else IDLE_SECONDS)

    def run_cluster(label: str, phase: str, at: dict[str, str], **kwargs: Any) -> Sweep:
        return guarded(label, phase, lambda: sweep(phase, cluster_plan, bench, at, **kwargs))

    def run_grown(phase4: Sweep, at: dict[str, str]) -> Sweep:
        return guarded("phase4 grown", GROWN, lambda: grown(phase4, at, cluster_plan, bench))

    guess = None
    if not only_cluster:
        phase1 = run("phase1", "phase1", quotas)
        guess = phase1.best or None
        phase2 = run(
            "phase2",
            "phase2",
            quotas,
            first_guess=guess,
            burst_rate=lambda best: round(_plan.BURST_FACTOR * best),
        )
        phase3 = run(
            "phase3",
            "phase3",
            quotas,
            first_guess=guess,
            burst_rate=lambda _best: round(_plan.BURST_FACTOR * phase2.best),
        )
        sweeps = (phase1, phase2, phase3)
        found["burst_factor"] = _plan.BURST_FACTOR
        found["phases"] = {s.phase: s.points for s in sweeps}
        found["burst"] = {s.phase: s.burst for s in sweeps if s.burst is not None}
    if cluster_redis is not None:
        found["cluster"] = past_one_redis(
            cluster_redis, quotas, guess, run_cluster, run_grown, progress
        )
    return {**found, "errors": errors}


def past_one_redis(
    redis_cpus: str,
    quotas: dict[str, str],
    guess: int | None,
    run: Callable[..., Sweep],
    run_grown: Callable[[Sweep, dict[str, str]], Sweep],
    progress: Any,
) -> dict[str, Any]:
    """Phase 3 and phase 4 with every Redis node at `redis_cpus`: low enough that phase 3's
    one Redis is its wall while the app replicas still fit on the machine, so phase 4's
    three primaries have a wall of theirs to move. Then phase 4 grown by a primary."""
    at = {**quotas, "REDIS_CPUS": redis_cpus}
    progress.section(
        "past one Redis",
        f"phase 3 and phase 4 with every Redis node at REDIS_CPUS={redis_cpus} "
        "(the other quotas as above)",
    )
    phase3 = run("phase3 (cluster comparison)", "phase3", at, first_guess=guess)
    phase4 = run("phase4", "phase4", at, first_guess=guess)
    four = run_grown(phase4, at)
    return {
        "quotas": {"REDIS_CPUS": redis_cpus},
        "phases": {"phase3": phase3.points, "phase4": phase4.points, GROWN: four.points},
    }


def grown(phase4: Sweep, at: dict[str, str], plan: Plan, bench: Bench) -> Sweep:
    """Phase 4 again at the app replica count of its best point, its cluster grown by a
    primary and its replica (what `make cluster-grow` does) before the search: with a
    quarter of the slots on a fourth primary, does its rate rise?"""
    confirmed = [p for p in phase4.points if p["confirmed"]]
    if not confirmed:
        return Sweep(GROWN, [])
    best = max(confirmed, key=lambda p: int(p["sustained_rate"]))
    replicas, progress = int(best["replicas"]), bench.progress

    def grow(stack: Stack) -> None:
        progress.step("growing the cluster by a primary and its replica (make cluster-grow)")
        redis_cluster.grow(list(stack.ctx.members["redis-node"]))
        progress.result("four primaries, each with a replica")

    progress.note(f"-- phase4 with {replicas} app replicas, grown to four primaries")
    at_eight = target("phase4", replicas, {**at, "REDIS_NODES": "8"})
    m = measure(
        replace(at_eight, name=f"{GROWN}-x{replicas}"),
        plan,
        bench,
        start=int(best["sustained_rate"]),
        prepare=grow,
    )
    point = point_result(replicas, m)
    wall = point["limited_by"] or "nothing at its quota"
    progress.result(f"{GROWN} x{replicas}: {m.sustained_rate:,}/s sustained, limited by {wall}")
    return Sweep(GROWN, [point])


def calibrate(bench: Bench) -> dict[str, Any] | None:
    """The disturbance probe on the quiet machine: the bar each point's probe is read against."""
    if bench.probe is None:
        return None
    bench.progress.step(f"timing the disturbance probe on the quiet machine for {QUIET_SECONDS} s")
    probe_ms = bench.probe.calibrate(QUIET_SECONDS)
    bench.progress.result(f"{probe_ms:.2f} ms of CPU per probe")
    return {"probe_ms": round(probe_ms, 3), "seconds": QUIET_SECONDS}
