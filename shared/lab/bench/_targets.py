"""Measure one target: a phase, or the HTTP ceiling (phase 1's app with persistence off).

Start it natively under its compose limits (monitoring left out: the bench reads the
per-service cgroup series itself), search for the highest arrival rate that holds the SLO,
run that rate a few more times for medians and CPU per signup, and stop it again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.bench import _plan, _queue
from lab.bench._disturbance import Probe
from lab.bench._plan import Plan, next_rate
from lab.bench._progress import Progress
from lab.bench._sampler import Sampler
from lab.bench._settle import Settler
from lab.bench._steps import RESERVED_WEIGHT, K6Group, Runner, Step
from lab.loadtest import _walls
from lab.native.components import BUILDERS, SKIPPED
from lab.native.stack import Stack, running
from lab.topology import PHASES, REPO, Topology, TopologyError, load, load_compose

# Observers, not part of what serves a signup: left out of the run and of the CPU budget.
_MONITORING = frozenset(
    load_compose(REPO / "monitoring" / "compose.yaml", {"LAB_PHASE": "x"})["services"]
)
ONESHOT = ("migrate",)


def observers(topology: Topology) -> tuple[str, ...]:
    return tuple(
        n
        for n in topology.services
        if n in _MONITORING or n.endswith("-exporter") or n in ("grafana", "cadvisor")
    )


@dataclass(frozen=True)
class Target:
    name: str  # "http_ceiling", "phase1", ...
    phase: str  # whose compose file it runs
    title: str
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    leave_out: tuple[str, ...] = ()  # beyond the observers
    # Compose variables of this run (REPLICAS, the scale model's quotas, LAB_CPU_PERIOD_US).
    variables: dict[str, str] = field(default_factory=dict)

    def topology(self) -> Topology:
        return load(self.phase, {**os.environ, **self.variables})

    @property
    def expects(self) -> str:
        return self.phase if self.name.startswith("phase") else "ceiling"


HTTP_CEILING = Target(
    "http_ceiling",
    "phase1",
    "HTTP ceiling: phase 1's app, same workers and limits, SIGNUP_STORE=none",
    environment={"app": {"SIGNUP_STORE": "none"}},
    leave_out=("db", "migrate"),
)
PHASE_TARGETS = {
    "phase1": Target("phase1", "phase1", "phase 1: monolith"),
    "phase2": Target("phase2", "phase2", "phase 2: nginx + app replicas + PgBouncer"),
    "phase3": Target("phase3", "phase3", "phase 3: Redis stream + batch writer"),
}


def unavailable(target: Target) -> str | None:
    """Why this target cannot run here yet (a phase still being built), or None."""
    compose = PHASES[target.phase] / "compose.yaml"
    if not compose.exists():
        shown = compose.relative_to(REPO) if compose.is_relative_to(REPO) else compose
        return f"{shown} does not exist yet"
    try:
        topology = target.topology()
    except (TopologyError, OSError, ValueError) as exc:
        return f"its compose file does not load: {exc}"
    missing = [
        n
        for n in topology.services
        if n not in BUILDERS and n not in SKIPPED and n not in observers(topology)
    ]
    if missing:
        return f"no native runtime for {', '.join(missing)} yet"
    return None


def resources(target: Target) -> tuple[dict[str, dict[str, Any]], float, tuple[str, ...]]:
    """(services with replicas and limits, total CPU budget in cores, services left out)."""
    topology = target.topology()
    skip = (*observers(topology), *target.leave_out)
    services = {
        name: {"replicas": s.replicas, "cpus": s.cpus, "memory_bytes": s.memory}
        for name, s in topology.services.items()
        if name not in skip and name not in ONESHOT
    }
    return services, topology.cpu_budget(exclude=(*skip, *ONESHOT)), skip


@dataclass
class Measurement:
    steps: list[Step] = field(default_factory=list)
    confirm: list[Step] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)  # per confirm run: CPU s per service
    sustained_rate: int = 0
    confirmed: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    idle: dict[str, dict[str, Any]] = field(default_factory=dict)  # per service, no load offered
    idle_seconds: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def wall(self) -> Step | None:
        """The step that shows what stopped the rate: the lowest one above it that broke the
        SLO, else the last confirming run (nothing above was tried)."""
        above = [s for s in self.steps if not s.held and s.rate > self.sustained_rate]
        if above:
            return min(above, key=lambda s: s.rate)
        return self.confirm[-1] if self.confirm else None


Inside = Callable[[Stack, Runner, Measurement], dict[str, Any]]


@dataclass(frozen=True)
class Bench:
    """What every part of one run shares: its progress lines, its temporary folder (every
    target's run folder and k6's summaries go below it) and k6's cgroup."""

    progress: Progress
    work: Path
    k6: K6Group
    probe: Probe | None = None  # beside every step: what the machine did meanwhile


@dataclass
class Started:
    """A target running natively, with what measures it: every step goes through `runner`,
    `settle` waits out each step's work, `sampler` keeps the timeline."""

    stack: Stack
    sampler: Sampler
    runner: Runner
    settle: Settler

    def cpu_step(self, rate: int, seconds: int) -> tuple[Step, dict[str, float]]:
        """A step, and the CPU seconds each service spent on it: read once the step's work is
        done, so in phase 3 the writer's rows for it count too."""
        before = _walls.cpu_by_service(self.sampler.containers_url)
        step = self.settle.after(self.runner.run(rate, seconds))
        after = _walls.cpu_by_service(self.sampler.containers_url)
        return step, {s: after[s] - before.get(s, 0.0) for s in after}

    def idle_load(self, seconds: float) -> dict[str, dict[str, Any]]:
        """Each service's CPU over `seconds` with no load offered, once the last step's work
        is done: what it spends at any rate (heartbeats, replication pings, polling)."""
        before, started = _walls.counters(self.sampler.containers_url), time.monotonic()
        time.sleep(seconds)
        after = _walls.counters(self.sampler.containers_url)
        return _walls.service_load(before, after, time.monotonic() - started)


@contextlib.contextmanager
def started(
    target: Target, bench: Bench, *, settle_timeout: float, prefix: str = "bench"
) -> Iterator[Started]:
    _, _, skip = resources(target)
    # The folder's name names the run's cgroups: unique, so a test's stack never shares them.
    folder = bench.work / f"{prefix}-{target.name}-{os.getpid()}"
    with (
        running(
            target.phase,
            folder,
            variables=target.variables,
            environment=target.environment,
            skip=skip,
            # As k6 is: the phase measured keeps its share when something else wants the cores.
            weight=RESERVED_WEIGHT,
        ) as stack,
        Sampler(f"http://127.0.0.1:{stack.ctx.ports.containers}") as sampler,
    ):
        work = bench.work / "k6"
        runner = Runner(
            stack.url, target.expects, work, sampler, target.name, bench.k6, bench.probe
        )
        settle = Settler(stack, has_db="db" not in target.leave_out, timeout=settle_timeout)
        yield Started(stack, sampler, runner, settle)


def measure(
    target: Target,
    plan: Plan,
    bench: Bench,
    *,
    start: int | None = None,
    inside: Inside | None = None,
    prepare: Callable[[Stack], None] | None = None,
) -> Measurement:
    """Run the search (from `start`, else the plan's first rate) and the confirming runs;
    `prepare` changes the stack before them (grows phase 4's cluster), `inside` measures more
    on the same stack after."""
    result, progress = Measurement(), bench.progress
    progress.step(f"starting {target.name} natively under its compose limits")
    with started(target, bench, settle_timeout=plan.settle_timeout) as on:
        if prepare is not None:
            prepare(on.stack)
        if plan.warm_up:
            warm = max(10, (start or plan.start_rate) // 2)
            progress.step(f"warming up at {warm}/s for {plan.step_seconds}s (not counted)")
            on.settle.after(on.runner.run(warm, plan.step_seconds))
        if plan.idle_seconds:
            progress.step(f"reading each service's CPU with no load for {plan.idle_seconds}s")
            try:
                result.idle = on.idle_load(plan.idle_seconds)
                result.idle_seconds = plan.idle_seconds
            except OSError as exc:
                # A reading beside the point: losing it must not lose the point's rate.
                progress.warn(f"no reading at no load: {exc}")
        _search(plan, progress, on, result, start)
        _confirm(plan, progress, on, result)
        if target.name == "phase3" and result.sustained_rate:
            result.extras.update(
                _queue.drain(on.stack, on.runner, on.settle, plan, progress, result.sustained_rate)
            )
        # Before `inside` adds rows of its own (the PostgreSQL ceilings).
        result.extras["rows_check"] = on.settle.check()
        if inside is not None:
            result.extras.update(inside(on.stack, on.runner, result))
    result.timeline = [
        {
            "t": s.t,
            "offered": s.offered,
            "achieved": round(s.achieved, 1),
            "cpu": s.cpu,
            "machine": s.machine,
        }
        for s in on.sampler.samples
    ]
    return result


def _search(plan: Plan, progress: Progress, on: Started, m: Measurement, start: int | None) -> None:
    held: list[int] = []
    broke: list[int] = []
    while (rate := next_rate(plan, held, broke, start)) is not None:
        progress.step(
            f"search step {len(m.steps) + 1}: offering {rate}/s for {plan.step_seconds}s "
            f"(does p95 < {_plan.P95_MS:.0f} ms, errors < {_plan.ERROR_RATE:.1%}, "
            f"dropped < {_plan.DROPPED_SHARE:.0%} hold?)"
        )
        step = on.settle.after(on.runner.run(rate, plan.step_seconds))
        progress.result(step.describe())
        m.steps.append(step)
        (held if step.held else broke).append(rate)
    m.sustained_rate = max(held, default=0)


def _confirm(plan: Plan, progress: Progress, on: Started, m: Measurement) -> None:
    rate = m.sustained_rate
    # The rate found sits within the search's precision of one that broke: on the edge. If
    # most runs there break, step down, at most `confirm_attempts` times in all.
    for _attempt in range(plan.confirm_attempts):
        if rate < 10:
            break
        runs, cpu = [], []
        accepted = _queue.accept_histogram(on.stack)
        for i in range(plan.runs):
            progress.step(
                f"run {i + 1}/{plan.runs} at {rate}/s for {plan.confirm_seconds}s "
                "(latency percentiles and CPU seconds per service at the rate found)"
            )
            step, used = on.cpu_step(rate, plan.confirm_seconds)
            progress.result(step.describe())
            runs.append(step)
            cpu.append(used)
        m.confirm, m.cpu = runs, cpu
        m.extras["accept_to_row"] = _queue.accept_to_row(
            accepted, _queue.accept_histogram(on.stack)
        )
        m.sustained_rate = rate
        if sum(r.held for r in runs) * 2 > len(runs):
            m.confirmed = True
            return
        rate = round(rate * plan.confirm_step)
        progress.note(f"most runs broke the SLO; trying {rate}/s")
