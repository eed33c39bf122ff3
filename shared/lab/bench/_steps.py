"""One measuring step: k6 offers one arrival rate for a while; the summary says if it held.

Every step is a separate k6 process running loadtests/rate.js (open model), so each rate's
p50/p95/p99, errors and dropped arrivals come from its own summary, not from a running
average over the steps before it. Around each step the cgroup counters of every service, of
k6 and of the whole machine are read, so a step also says where the CPU went.

k6 runs in a cgroup of its own (K6Group) with a reserved share of the machine: it cannot be
starved by the services it measures, its CPU is accounted apart, and whatever is left in the
group when the bench ends (a k6 started the instant Ctrl-C arrived) is killed with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab._proc import free_port
from lab.bench import _plan
from lab.bench._disturbance import Probe
from lab.bench._sampler import Sampler
from lab.loadtest import _k6, _walls
from lab.native import _cgroup

# cpu.weight of k6's cgroup, and of the measured phase's, against the default 100 of
# everything else at their level: under contention each gets five times the share of any one
# sibling (cpu.shares 5120 in cgroup v1), so other work on the machine disturbs them less.
RESERVED_WEIGHT = 500
# The phases that answer a signup with 202 (queued) rather than 201.
QUEUED = ("phase3", "phase4")


class StepFailed(RuntimeError):
    """k6 itself failed (not an SLO miss): a script error, or the service never got ready."""


@dataclass(frozen=True)
class Step:
    rate: int
    seconds: float
    sent: int
    acknowledged: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float
    dropped: int
    dropped_share: float
    k6_cpu_seconds: float
    started: float  # on the sampler's clock, for the timeline
    ended: float
    # Over the step: cores per service against its quota, the whole machine's busy cores.
    load: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine_cores: float | None = None
    backlog: int = 0  # phase 3: signups still in the stream when k6 finished
    # What the machine did meanwhile (lab.bench._disturbance): the probe's slowdown, steal.
    machine: dict[str, float | None] | None = None

    @property
    def slo_held(self) -> bool:
        """What a client sees: latency, errors, and arrivals k6 could not even send."""
        return (
            self.p95_ms is not None
            and self.p95_ms < _plan.P95_MS
            and self.error_rate < _plan.ERROR_RATE
            and self.dropped_share < _plan.DROPPED_SHARE
            and self.sent > 0
        )

    @property
    def held(self) -> bool:
        """The SLO held and the rate can go on: a queue that grew by more than two seconds
        of arrivals is not keeping up, however fast the answers were."""
        return self.slo_held and self.backlog <= 2 * self.rate

    @property
    def k6_cores(self) -> float:
        return self.k6_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def limited_by(self) -> dict[str, Any]:
        return _walls.limiter(self.load, self.machine_cores or 0.0, os.cpu_count() or 1)

    @property
    def achieved(self) -> float:
        return self.acknowledged / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        p95 = f"{self.p95_ms:.1f} ms" if self.p95_ms is not None else "-"
        verdict = "held" if self.held else "SLO broken"
        if self.backlog > 2 * self.rate:
            verdict += f" (queue {self.backlog:,} behind)"
        busiest = sorted(
            ((v["used"], s) for s, v in self.load.items() if v.get("used") is not None),
            reverse=True,
        )[:2]
        shares = ", ".join(f"{s} {used:.0%}" for used, s in busiest)
        return (
            f"{self.achieved:,.0f}/s acknowledged, p95 {p95}, errors {self.error_rate:.3%}, "
            f"dropped {self.dropped_share:.2%}: {verdict}"
            + (f" | of quota: {shares}" if shares else "")
            + (f" | machine {self.machine_cores:.2f} cores" if self.machine_cores else "")
            + f", k6 {self.k6_cores:.2f}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "held": self.held,
            "slo_held": self.slo_held,
            "achieved": round(self.achieved, 1),
            "k6_cores": round(self.k6_cores, 3),
            "limited_by": self.limited_by,
        }


class K6Group:
    """The cgroup every k6 of one bench runs in (or nothing, where cgroups are unavailable)."""

    def __init__(self) -> None:
        self.cgroup: _cgroup.Cgroup | None = None
        if _cgroup.available() is None:
            self.cgroup = _cgroup.Cgroup(f"signup-lab/k6-{os.getpid()}")
            self.cgroup.create(None, None, weight=RESERVED_WEIGHT)

    def command(self, args: list[str]) -> list[str]:
        return self.cgroup.join_command(args) if self.cgroup else args

    def __enter__(self) -> K6Group:
        return self

    def __exit__(self, *exc: object) -> None:
        """Kill whatever still runs in the group, then remove it."""
        if self.cgroup is None:
            return
        deadline = time.monotonic() + 10
        while (pids := self.cgroup.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)  # until the kernel has taken them out of cgroup.procs
        self.cgroup.destroy()


@dataclass
class Runner:
    """Runs steps against one target (a phase, or the HTTP ceiling)."""

    base_url: str
    phase: str  # picks 201 or 202; "ceiling" expects 201
    work: Path
    sampler: Sampler
    label: str
    k6: K6Group
    probe: Probe | None = None

    def run(self, rate: int, seconds: int) -> Step:
        self.work.mkdir(parents=True, exist_ok=True)
        run_id = f"bench-{self.label.replace('_', '-')}-{rate}-{secrets.token_hex(3)}"
        summary = self.work / f"{run_id}.json"
        api = f"127.0.0.1:{free_port()}"
        variables = {
            "BASE_URL": self.base_url,
            "RATE": str(rate),
            "DURATION": f"{seconds}s",
            "RUN_ID": run_id,
            "SUMMARY_JSON": str(summary),
            "MIX": "none",
            "EXPECT_STATUS": "202" if self.phase in QUEUED else "201",
        }
        args = self.k6.command(_k6.command("rate", variables, address=api, quiet=True))
        started = self.sampler.now()
        before, busy_before = _walls.counters(self.sampler.containers_url), _busy()
        mark = self.probe.mark() if self.probe else None
        self.sampler.watch(f"http://{api}", rate)
        log = (self.work / f"{run_id}.log").open("w")
        try:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            code, cpu = _wait(process)
        finally:
            self.sampler.watch(None, 0)
            log.close()
        after, busy_after = _walls.counters(self.sampler.containers_url), _busy()
        machine = self.probe.since(mark) if self.probe and mark else None
        if code not in (0, _k6.THRESHOLDS_CROSSED) or not summary.exists():
            tail = (self.work / f"{run_id}.log").read_text(errors="replace").strip()[-400:]
            raise StepFailed(f"k6 exited {code} at {rate}/s: {tail}")
        s = _k6.Summary.read(summary)
        sent = int(s.count("http_reqs")) - 1  # the /readyz gate is not a signup
        dropped = int(s.count("dropped_iterations"))
        planned = sent + dropped
        return Step(
            rate=rate,
            seconds=float(seconds),
            sent=sent,
            acknowledged=s.acknowledged,
            p50_ms=s.latency_ms("med"),
            p95_ms=s.latency_ms("p(95)"),
            p99_ms=s.latency_ms("p(99)"),
            error_rate=s.error_rate,
            dropped=dropped,
            dropped_share=dropped / planned if planned else 0.0,
            k6_cpu_seconds=cpu,
            started=started,
            ended=self.sampler.now(),
            load=_walls.service_load(before, after, float(seconds)),
            machine_cores=round((busy_after - busy_before) / seconds, 3),
            machine=machine,
        )


def _busy() -> float:
    """CPU seconds the whole machine has been busy since boot."""
    return _walls.busy_ticks() / _walls.TICKS


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Exit code and CPU seconds of k6 (wait4 reports the rusage of k6 and the `sh` that
    joined it to its cgroup, which exec'd into it)."""
    while True:
        try:
            _, status, usage = os.wait4(process.pid, 0)
            break
        except KeyboardInterrupt:
            # Stop k6 now (a terminal's Ctrl-C reached it already; SIGTERM to the bench did
            # not), reap it, then let the bench unwind and stop the stack.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
        except ChildProcessError:
            return process.wait(), 0.0
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime
