"""Reading numbers off running processes: /metrics pages, cgroup CPU, k6's REST API.

The bench reads the same series Prometheus would scrape, straight from their source, so it
needs no Prometheus of its own (one fewer process sharing the 2 cores).
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SERVICE_LABEL = "container_label_com_docker_compose_service"
TICKS = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these


def fetch(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


@dataclass(frozen=True)
class Counters:
    """Per compose service (replicas summed): the cgroup counters the supervisor exports."""

    cpu_seconds: dict[str, float]
    periods: dict[str, float]
    throttled_periods: dict[str, float]
    throttled_seconds: dict[str, float]
    quota_cores: dict[str, float]  # the service's quota times its replicas


_COUNTERS = {
    "container_cpu_usage_seconds_total": "cpu_seconds",
    "container_cpu_cfs_periods_total": "periods",
    "container_cpu_cfs_throttled_periods_total": "throttled_periods",
    "container_cpu_cfs_throttled_seconds_total": "throttled_seconds",
}


def cpu_by_service(containers_url: str) -> dict[str, float]:
    return counters(containers_url).cpu_seconds


def counters(containers_url: str) -> Counters:
    """From the supervisor's cAdvisor-named series: the per-service cgroup accounting."""
    text = fetch(f"{containers_url}/metrics")
    found: dict[str, dict[str, float]] = {field: defaultdict(float) for field in _COUNTERS.values()}
    quota: dict[str, dict[str, float]] = defaultdict(dict)
    period: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            service = sample.labels.get(SERVICE_LABEL)
            if service is None:
                continue
            if sample.name in _COUNTERS:
                found[_COUNTERS[sample.name]][service] += float(sample.value)
            elif sample.name == "container_spec_cpu_quota":
                quota[service][sample.labels["name"]] = float(sample.value)
            elif sample.name == "container_spec_cpu_period":
                period[service] = float(sample.value)
    cores = {
        service: sum(per_replica.values()) / period[service]
        for service, per_replica in quota.items()
        if period.get(service)
    }
    return Counters(**{k: dict(v) for k, v in found.items()}, quota_cores=cores)


def busy_ticks() -> int:
    """Clock ticks all CPUs have been busy since boot, from /proc/stat: the whole machine, k6
    and everything else included."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return sum(fields[:8]) - fields[3] - fields[4]


def scrape(urls: Iterable[str], name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Every sample called `name` (a counter's `_total`, a histogram's `_bucket`...) on each
    process's /metrics page."""
    for url in urls:
        for family in text_string_to_metric_families(fetch(f"{url}/metrics")):
            for sample in family.samples:
                if sample.name == name:
                    yield dict(sample.labels), float(sample.value)


def by_label(urls: Iterable[str], name: str, label: str) -> dict[str, float]:
    """A counter summed over processes, per value of one label."""
    totals: dict[str, float] = defaultdict(float)
    for labels, value in scrape(urls, name):
        totals[labels.get(label, "")] += value
    return dict(totals)


def sum_metric(urls: Iterable[str], name: str) -> float:
    return sum((value for _, value in scrape(urls, name)), 0.0)


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (le -> count), summed over processes."""

    buckets: dict[float, float]

    @classmethod
    def scrape(cls, urls: Iterable[str], name: str) -> Histogram:
        buckets: dict[float, float] = defaultdict(float)
        for labels, value in scrape(urls, f"{name}_bucket"):
            buckets[float(labels["le"])] += value
        return cls(dict(buckets))

    def minus(self, earlier: Histogram) -> Histogram:
        return Histogram({le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()})

    @property
    def count(self) -> float:
        return self.buckets.get(math.inf, 0.0)

    def quantile(self, q: float) -> float | None:
        """Prometheus's histogram_quantile: linear inside the bucket the rank falls in."""
        total = self.count
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for le in sorted(self.buckets):
            count = self.buckets[le]
            if count >= rank:
                if math.isinf(le):
                    return lower_bound  # beyond the last finite bucket: its bound is all we know
                if count == lower_count:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / (
                    count - lower_count
                )
            lower_bound, lower_count = le, count
        return None


def k6_counts(api: str) -> tuple[float, float] | None:
    """(requests completed, signups acknowledged) so far, from k6's REST API (None before it
    listens)."""
    counts = []
    for metric in ("http_reqs", "signups_acknowledged"):
        try:
            data = json.loads(fetch(f"{api}/v1/metrics/{metric}", timeout=1.0))
        except (OSError, ValueError):
            # signups_acknowledged exists only once the first signup was acknowledged.
            if metric == "http_reqs":
                return None
            data = {"data": {"attributes": {"sample": {}}}}
        counts.append(float(data["data"]["attributes"]["sample"].get("count", 0.0)))
    return counts[0], counts[1]
