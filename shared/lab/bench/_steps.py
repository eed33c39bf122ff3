"""One measuring step: k6 offers one arrival rate for a while; the summary says if it held.

Every step is a separate k6 process running loadtests/rate.js (open model), so each rate's
p50/p95/p99, errors and dropped arrivals come from its own summary, not from a running
average over the steps before it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab import _k6
from lab._proc import free_port
from lab.bench import _plan
from lab.bench._sampler import Sampler


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

    @property
    def held(self) -> bool:
        return (
            self.p95_ms is not None
            and self.p95_ms < _plan.P95_MS
            and self.error_rate < _plan.ERROR_RATE
            and self.dropped_share < _plan.DROPPED_SHARE
            and self.sent > 0
        )

    @property
    def achieved(self) -> float:
        return self.acknowledged / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        p95 = f"{self.p95_ms:.1f} ms" if self.p95_ms is not None else "-"
        verdict = "held" if self.held else "SLO broken"
        return (
            f"{self.achieved:,.0f}/s acknowledged, p95 {p95}, errors {self.error_rate:.3%}, "
            f"dropped {self.dropped_share:.2%}: {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "held": self.held, "achieved": round(self.achieved, 1)}


@dataclass
class Runner:
    """Runs steps against one target (a phase, or the HTTP ceiling)."""

    base_url: str
    phase: str  # picks 201 or 202; "ceiling" expects 201
    work: Path
    sampler: Sampler
    label: str

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
            "EXPECT_STATUS": "202" if self.phase == "phase3" else "201",
        }
        args = _k6.command("rate", variables, address=api, quiet=True)
        started = self.sampler.now()
        self.sampler.watch(f"http://{api}", rate)
        log = (self.work / f"{run_id}.log").open("w")
        try:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            code, cpu = _wait(process)
        finally:
            self.sampler.watch(None, 0)
            log.close()
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
        )


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Exit code and CPU seconds of k6 (wait4 reports the child's own rusage)."""
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
