"""A background thread that samples, once a second, what the plots show over time.

Requests k6 completed (its REST API), CPU seconds per service (the supervisor's cgroup
series) and the machine's busy cores, stamped with the rate being offered. A `probe` (set by
the burst) adds figures of its own: the queue's backlog, the rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.bench import _probe
from lab.loadtest import _walls


@dataclass
class Sample:
    t: float  # seconds since the target's first step
    offered: float  # arrivals per second k6 was asked for (0 between steps)
    achieved: float  # requests per second k6 completed since the previous sample
    cpu: dict[str, float]  # cores used per service since the previous sample
    machine: float = 0.0  # busy cores of the whole machine since the previous sample
    acknowledged: float = 0.0  # signups per second k6 saw acknowledged (201/202)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Sampler:
    containers_url: str
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _api: str | None = None
    _offered: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _origin: float = field(default_factory=time.monotonic)
    probe: Callable[[], dict[str, float]] | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def now(self) -> float:
        """Seconds on the timeline's clock."""
        return round(time.monotonic() - self._origin, 2)

    def watch(self, api: str | None, offered: float) -> None:
        """Follow the k6 run whose REST API is `api` (None: no load right now)."""
        self._api, self._offered = api, offered

    def _run(self) -> None:
        last_t = time.monotonic()
        last: tuple[float, float] | None = None  # k6's requests and acknowledged signups
        last_api: str | None = None
        last_cpu, last_busy = self._cpu(), _walls.busy_ticks()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            api = self._api
            counts = _probe.k6_counts(api) if api else None
            if api != last_api:
                last, last_api = None, api  # a new k6 process counts from zero
            cpu, busy = self._cpu(), _walls.busy_ticks()
            dt = now - last_t
            achieved = acknowledged = 0.0
            if counts is not None and last is not None:
                achieved = max(0.0, counts[0] - last[0]) / dt
                acknowledged = max(0.0, counts[1] - last[1]) / dt
            cores = {s: max(0.0, v - last_cpu.get(s, v)) / dt for s, v in cpu.items()}
            probe = self.probe
            self.samples.append(
                Sample(
                    self.now(),
                    self._offered if api else 0.0,
                    achieved,
                    cores,
                    machine=round((busy - last_busy) / _walls.TICKS / dt, 3),
                    acknowledged=acknowledged,
                    extra=probe() if probe is not None else {},
                )
            )
            last_t, last_cpu, last_busy = now, cpu, busy
            last = counts if counts is not None else last

    def _cpu(self) -> dict[str, float]:
        try:
            return _walls.cpu_by_service(self.containers_url)
        except OSError:
            return {}
