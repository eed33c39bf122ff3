"""Every capacity, target and burst run names its wall: what ran out while k6 pushed.

While k6 runs, a thread reads once a second the per-service cgroup counters (the supervisor's
natively, cAdvisor's under Docker), the machine's busy CPU time and k6's own. Afterwards the
readings are cut at the steps the summary reports (the step where the SLO broke and the last
that held; the whole run for target and burst) and judged by lab.loadtest._walls, the bench's rules:
the service at its quota, else the full machine or the load generator, else nothing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from lab.loadtest import _walls

# Services shown per step: the busiest few (exporters and Prometheus would only add noise).
SHOWN = 5


@dataclass(frozen=True)
class Reading:
    at: float  # Unix seconds
    counters: _walls.Counters | None
    busy_s: float  # CPU seconds the whole machine has been busy since boot
    k6_s: float | None  # k6's CPU seconds so far


@dataclass
class WallSampler:
    """Readings once a second from start() to stop(); `problem` says why per-service figures
    are missing, when they are."""

    containers_url: str | None
    interval: float = 1.0
    readings: list[Reading] = field(default_factory=list)
    problem: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _k6: psutil.Process | None = None

    def start(self, k6_pid: int | None) -> None:
        if self.containers_url is None:
            self.problem = "no per-service CPU figures: nothing exports the containers' counters"
        try:
            self._k6 = psutil.Process(k6_pid) if k6_pid else None
        except psutil.Error:
            self._k6 = None
        self._read()
        self._thread = threading.Thread(target=self._run, name="wall-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._read()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def _read(self) -> None:
        counters = None
        if self.containers_url is not None and self.problem is None:
            try:
                counters = _walls.counters(self.containers_url, timeout=0.8)
            except (OSError, ValueError) as exc:  # URLError is an OSError
                # One missed reading costs a second of resolution; a dead endpoint costs all.
                if not self.readings:
                    self.problem = f"no per-service CPU figures: {self.containers_url}: {exc}"
        k6 = None
        if self._k6 is not None:
            try:
                times = self._k6.cpu_times()
                k6 = times.user + times.system
            except psutil.Error:
                k6 = self.readings[-1].k6_s if self.readings else None
        busy = _walls.busy_ticks() / _walls.TICKS
        self.readings.append(Reading(time.time(), counters, busy, k6))

    def window(self, start: float, end: float) -> dict[str, Any] | None:
        """What each service used from `start` to `end` (Unix seconds), judged; None when
        fewer than two readings fall inside."""
        inside = [r for r in self.readings if start - 0.5 <= r.at <= end + 0.5]
        if len(inside) < 2 or inside[-1].at - inside[0].at < 1.0:
            return None
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at
        load: dict[str, dict[str, Any]] = {}
        with_counters = [r.counters for r in inside if r.counters is not None]
        if len(with_counters) >= 2:
            a, b = with_counters[0], with_counters[-1]
            # cAdvisor's counters are as of its last housekeeping: use its clock when given.
            span = (b.at - a.at) if a.at is not None and b.at is not None else seconds
            if span > 0:
                load = _walls.service_load(a, b, span)
        machine = (last.busy_s - first.busy_s) / seconds
        k6 = (
            (last.k6_s - first.k6_s) / seconds
            if first.k6_s is not None and last.k6_s is not None
            else None
        )
        cores = os.cpu_count() or 1
        return {
            "seconds": round(seconds, 1),
            "services": load,
            "machine_cores": round(machine, 3),
            "k6_cores": round(k6, 3) if k6 is not None else None,
            "cores": cores,
            "limited_by": _walls.limiter(load, machine, cores, k6),
        }


def capacity_windows(summary: dict[str, Any], ended: float) -> list[Window]:
    """The last step that held, and the step that broke from the end of the one before it
    (its ramp included: a step can break in its ramp, or seconds into its hold) until it
    stopped; Unix seconds, from the time setup() handed over to the scenario."""
    lab = summary.get("lab", {})
    started = (summary.get("setup_data") or {}).get("startedAt")
    steps = lab.get("capacity", {}).get("steps", [])
    if not started or not steps:
        return []
    origin = float(started) / 1000
    held = int(lab["capacity"].get("sustained_rate", 0))
    chosen: list[Window] = []
    previous_end = origin
    for step in steps:
        begin = origin + float(step.get("from_s", 0))
        end = begin + float(step.get("ran_s", 0))
        if step["ok"] and step["rate"] == held:
            chosen.append(("held", int(step["rate"]), begin, end))
        elif not step["ok"]:
            stop = end if step.get("ran_s") else ended
            chosen.append(("broke", int(step["rate"]), previous_end, stop))
            break
        previous_end = end
    return chosen


def run_window(summary: dict[str, Any], ended: float) -> tuple[float, float] | None:
    """The scenario's span: from the end of setup() to the end of k6."""
    started = (summary.get("setup_data") or {}).get("startedAt")
    return (float(started) / 1000, ended) if started else None


Window = tuple[str, int | None, float, float]  # label, rate (None: the whole run), start, end


def report(sampler: WallSampler, windows: list[Window]) -> dict[str, Any]:
    """The `wall` block of the summary: each window judged, and the one line that names it
    (from the step that broke, else the last window)."""
    judged = []
    for label, rate, start, end in windows:
        found = sampler.window(start, end)
        if found is not None:
            judged.append({"label": label, "rate": rate, **found})
    named = next((w for w in judged if w["label"] == "broke"), judged[-1] if judged else None)
    return {
        "windows": judged,
        "limited_by": named["limited_by"] if named else None,
        "problem": sampler.problem,
    }


def describe(wall: dict[str, Any], *, broke: bool) -> str:
    """Lines for a person: where the CPU went in each window, then the wall."""
    lines = ["where the CPU went (cores used of each service's quota; periods throttled):"]
    for w in wall["windows"]:
        head = f"{w['label']} {w['rate']}/s" if w["rate"] is not None else w["label"]
        lines.append(f"  {head} over {w['seconds']:.0f} s: {_services(w)}")
    held = next((w for w in wall["windows"] if w["label"] == "held" and w["rate"]), None)
    if held is not None and (costs := _cost(held)):
        lines.append(f"  CPU per signup at {held['rate']}/s: {costs}")
    if wall.get("problem"):
        lines.append(f"  ({wall['problem']})")
    named = wall.get("limited_by")
    if named is None:
        lines.append("wall: not measured (the run was too short to read the counters twice)")
    elif named["service"] is not None:
        lines.append(f"limited by {named['service']}: {named['evidence']}")
    elif broke:
        lines.append(
            f"limited by no CPU: {named['evidence']}; the SLO broke on something else "
            "(a queue limit, a lock, a slow disk: see the errors and the pool wait)"
        )
    else:
        lines.append(f"no wall reached: {named['evidence']}")
    return "\n".join(lines)


def _cost(w: dict[str, Any]) -> str:
    """Milliseconds of CPU each busy service spent per signup offered: the figure to compare
    with the committed runs', whatever the machine's speed."""
    busy = sorted(w["services"].items(), key=lambda item: item[1]["cores"], reverse=True)
    return ", ".join(
        f"{service} {v['cores'] / w['rate'] * 1000:.3f} ms"
        for service, v in busy[:3]
        if v["cores"] >= 0.01
    )


def _services(w: dict[str, Any]) -> str:
    def weight(item: tuple[str, dict[str, Any]]) -> float:
        values = item[1]
        return float(values["used"] if values.get("used") is not None else values["cores"])

    parts = []
    for service, v in sorted(w["services"].items(), key=weight, reverse=True)[:SHOWN]:
        if v["cores"] < 0.005:
            continue
        if v.get("quota_cores"):
            throttled = v.get("throttled_share")
            extra = f", throttled {throttled:.0%}" if throttled else ""
            parts.append(
                f"{service} {v['cores']:.2f} of {v['quota_cores']:g} ({v['used']:.0%}{extra})"
            )
        else:
            parts.append(f"{service} {v['cores']:.2f} (no quota)")
    k6 = f", k6 {w['k6_cores']:.2f}" if w.get("k6_cores") is not None else ""
    parts.append(f"machine {w['machine_cores']:.2f} of {w['cores']} cores{k6}")
    return " · ".join(parts)
