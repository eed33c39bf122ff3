"""A background thread that samples, once a second, what the plots show over time.

Requests k6 completed (its REST API) and CPU seconds per service (the supervisor's cgroup
series), stamped with the rate being offered, for the throughput-over-time plot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lab.bench import _probe


@dataclass
class Sample:
    t: float  # seconds since the target's first step
    offered: float  # arrivals per second k6 was asked for (0 between steps)
    achieved: float  # requests per second k6 completed since the previous sample
    cpu: dict[str, float]  # cores used per service since the previous sample


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
        last_reqs: float | None = None
        last_api: str | None = None
        last_cpu = self._cpu()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            api = self._api
            reqs = _probe.k6_requests(api) if api else None
            if api != last_api:
                last_reqs, last_api = None, api  # a new k6 process counts from zero
            cpu = self._cpu()
            dt = now - last_t
            achieved = 0.0
            if reqs is not None and last_reqs is not None:
                achieved = max(0.0, reqs - last_reqs) / dt
            cores = {s: max(0.0, v - last_cpu.get(s, v)) / dt for s, v in cpu.items()}
            self.samples.append(Sample(self.now(), self._offered if api else 0.0, achieved, cores))
            last_t, last_reqs, last_cpu = now, reqs if reqs is not None else last_reqs, cpu

    def _cpu(self) -> dict[str, float]:
        try:
            return _probe.cpu_by_service(self.containers_url)
        except OSError:
            return {}
