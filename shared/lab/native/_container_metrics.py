"""cAdvisor's container_* series for native services, so one Capacity dashboard fits both
runtimes: read from each service's cgroup, or from its process tree where there are none."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lab.native import _cgroup

if TYPE_CHECKING:
    from lab._proc import ServerProcess
    from lab.runtime import ProcSpec


class Entry(Protocol):
    """What the collector reads of one supervised process (the supervisor's `Running`): its
    spec, its process (None until started) and its cgroup (None where there are none). Typed
    here, not imported, so this module does not import the supervisor that imports it."""

    @property
    def spec(self) -> ProcSpec: ...

    @property
    def process(self) -> ServerProcess | None: ...

    @property
    def cgroup(self) -> _cgroup.Cgroup | None: ...


class ContainerCollector(Collector):
    LABELS = ("name", "container_label_com_docker_compose_service")

    def __init__(self, cfs_period: int, running: Callable[[], Iterable[Entry]]) -> None:
        self.cfs_period = cfs_period
        self.running = running

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        cpu = CounterMetricFamily(
            "container_cpu_usage_seconds_total", "Cumulative CPU time consumed", labels=self.LABELS
        )
        memory = GaugeMetricFamily(
            "container_memory_usage_bytes", "Current memory usage", labels=self.LABELS
        )
        quota = GaugeMetricFamily("container_spec_cpu_quota", "CPU quota", labels=self.LABELS)
        period = GaugeMetricFamily("container_spec_cpu_period", "CPU period", labels=self.LABELS)
        limit = GaugeMetricFamily(
            "container_spec_memory_limit_bytes", "Memory limit", labels=self.LABELS
        )
        # cAdvisor's throttling series: the evidence that a service ran into its quota.
        periods = CounterMetricFamily(
            "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement period intervals",
            labels=self.LABELS,
        )
        throttled = CounterMetricFamily(
            "container_cpu_cfs_throttled_periods_total",
            "Number of throttled period intervals",
            labels=self.LABELS,
        )
        throttled_s = CounterMetricFamily(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled",
            labels=self.LABELS,
        )
        cfs_period = self.cfs_period
        for entry in list(self.running()):
            if entry.spec.oneshot or entry.process is None:
                continue
            labels = [entry.spec.name, entry.spec.service]
            usage = _usage(entry)
            if usage is None:
                continue
            cpu.add_metric(labels, usage.cpu_seconds)
            memory.add_metric(labels, usage.memory_bytes)
            if entry.spec.cpus:
                # The pair the cgroup was given (a small quota gets a longer period).
                quota_us, period_us = _cgroup.cfs(entry.spec.cpus, cfs_period)
                quota.add_metric(labels, quota_us)
                period.add_metric(labels, period_us)
                stats = _throttling(entry)
                if stats is not None:
                    periods.add_metric(labels, stats.periods)
                    throttled.add_metric(labels, stats.throttled)
                    throttled_s.add_metric(labels, stats.throttled_seconds)
            if entry.spec.memory:
                limit.add_metric(labels, entry.spec.memory)
        yield from (cpu, memory, quota, period, limit, periods, throttled, throttled_s)


def _throttling(entry: Entry) -> _cgroup.Throttling | None:
    if entry.cgroup is None:
        return None
    try:
        return entry.cgroup.throttling()
    except (OSError, KeyError, ValueError):
        return None


def _usage(entry: Entry) -> _cgroup.Usage | None:
    if entry.cgroup is not None:
        try:
            return entry.cgroup.usage()
        except OSError:
            return None
    # No cgroups: add up the process tree (a process that exited takes its CPU time with it).
    pid = entry.process.pid if entry.process else None
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    cpu_seconds, rss = 0.0, 0
    for proc in procs:
        try:
            times, mem = proc.cpu_times(), proc.memory_info()
        except psutil.Error:
            continue
        cpu_seconds += times.user + times.system
        rss += mem.rss
    return _cgroup.Usage(cpu_seconds, rss)
