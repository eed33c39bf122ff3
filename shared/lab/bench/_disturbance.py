"""What the machine itself did while a rate was measured: a fixed piece of CPU work timed
beside every run, and the time the hypervisor gave to someone else (steal).

A rate under a CPU quota is a rate of CPU time. When the CPU underneath gets slower (another
tenant on the host, a throttled host), every quota buys less work and every wall falls with
it: on this kind of VM the same code once measured phase 2's one-replica wall at 266/s and
149/s a few hours apart, with phase 1's app spending three times the CPU per signup. Nothing
in the lab's own counters tells such a run from a real regression, so the bench times a probe
beside it: the same hash of the same bytes every PERIOD seconds, in a thread of its own. Its
CPU time (not its wall time: waiting for a core is the lab's own load, not a slower CPU) over
a run, against the same probe on the quiet machine before the first point, is the run's
slowdown; /proc/stat's steal counter is the rest of the story.
"""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from dataclasses import dataclass

# Under a millisecond of CPU (0.64 ms on the 2-core VM) every quarter second: well under 1 %
# of a core, inside the noise of what it measures, and a few dozen readings in a 15 s run.
PERIOD = 0.25
_WORK = bytes(range(256)) * 4096  # 1 MiB; hashlib drops the GIL for it, so no bench thread waits
# A run whose probe ran this much slower than on the quiet machine, or whose steal was this
# share of all CPU time, was measured on a disturbed machine: its rate says little about
# the code (the bar a rerun must meet is the same 15 %).
DISTURBED = 1.15
STEAL_DISTURBED = 0.05


def _unit() -> float:
    """CPU seconds of one piece of work, on this thread's own clock."""
    started = time.thread_time()
    hashlib.sha256(_WORK).digest()
    return time.thread_time() - started


def steal_ticks() -> tuple[int, int]:
    """(steal, all) clock ticks of every CPU since boot, from /proc/stat's first line."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user
    return fields[7], sum(fields[:8])


@dataclass(frozen=True)
class Mark:
    """Where a run started: on the probe's clock and on the steal counter."""

    at: float
    steal: tuple[int, int]


class Probe:
    """The probe thread; `quiet_ms` is its median on the machine before anything runs."""

    def __init__(self, period: float = PERIOD) -> None:
        self.period = period
        self.quiet_ms: float | None = None
        self._readings: list[tuple[float, float]] = []  # (monotonic, CPU ms)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disturbance-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            took = _unit() * 1000
            with self._lock:
                self._readings.append((time.monotonic(), took))

    def _between(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [ms for t, ms in self._readings if start <= t <= end]

    def sample(self, seconds: float) -> list[float]:
        """The probe's readings (CPU ms) over the next `seconds`."""
        start = time.monotonic()
        # The readings arrive on the probe's own thread; waiting out a window for them is
        # the measurement itself, not a guess at a condition.
        time.sleep(seconds)
        return self._between(start, time.monotonic())

    def calibrate(self, seconds: float) -> float:
        """Read the probe for `seconds` with nothing else running: the bar every run is
        compared to."""
        readings = self.sample(seconds)
        if not readings:
            raise RuntimeError(f"the disturbance probe took no reading in {seconds:.0f} s")
        self.quiet_ms = statistics.median(readings)
        return self.quiet_ms

    def mark(self) -> Mark:
        return Mark(time.monotonic(), steal_ticks())

    def since(self, mark: Mark) -> dict[str, float | None]:
        """The probe's median and slowdown, and the steal share, from `mark` until now."""
        readings = self._between(mark.at, time.monotonic())
        steal, total = steal_ticks()
        ticks = total - mark.steal[1]
        probe = statistics.median(readings) if readings else None
        return {
            "probe_ms": None if probe is None else round(probe, 3),
            "slowdown": round(probe / self.quiet_ms, 3) if probe and self.quiet_ms else None,
            "steal_share": round((steal - mark.steal[0]) / ticks, 4) if ticks > 0 else 0.0,
        }


def verdict(records: list[dict[str, float | None]]) -> dict[str, float | bool | None]:
    """A point's record from its runs': the medians, and whether the machine was disturbed."""
    slowdowns = [s for r in records if (s := r.get("slowdown")) is not None]
    steals = [s for r in records if (s := r.get("steal_share")) is not None]
    slowdown = statistics.median(slowdowns) if slowdowns else None
    steal = statistics.median(steals) if steals else None
    return {
        "slowdown": slowdown,
        "steal_share": steal,
        "disturbed": (slowdown is not None and slowdown > DISTURBED)
        or (steal is not None and steal > STEAL_DISTURBED),
    }
