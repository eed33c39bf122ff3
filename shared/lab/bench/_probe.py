"""Reading numbers off running processes: /metrics pages, cgroup CPU, k6's REST API.

The bench reads the same series Prometheus would scrape, straight from their source, so it
needs no Prometheus of its own (one fewer process sharing the 2 cores).
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SERVICE_LABEL = "container_label_com_docker_compose_service"


def fetch(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` (a counter's `_total`, a histogram's `_bucket`...)."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


def cpu_by_service(containers_url: str) -> dict[str, float]:
    """CPU seconds so far per compose service (replicas summed), from the supervisor's
    cAdvisor-named series: the per-service cgroup accounting."""
    text = fetch(f"{containers_url}/metrics")
    totals: dict[str, float] = defaultdict(float)
    for labels, value in samples(text, "container_cpu_usage_seconds_total"):
        totals[labels[SERVICE_LABEL]] += value
    return dict(totals)


def sum_metric(urls: Iterable[str], name: str) -> float:
    total = 0.0
    for url in urls:
        total += sum(value for _, value in samples(fetch(f"{url}/metrics"), name))
    return total


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (le -> count), summed over processes."""

    buckets: dict[float, float]

    @classmethod
    def scrape(cls, urls: Iterable[str], name: str) -> Histogram:
        buckets: dict[float, float] = defaultdict(float)
        for url in urls:
            for labels, value in samples(fetch(f"{url}/metrics"), f"{name}_bucket"):
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


def k6_requests(api: str) -> float | None:
    """Requests k6 has completed so far, from its REST API (None before it listens)."""
    try:
        data = json.loads(fetch(f"{api}/v1/metrics/http_reqs", timeout=1.0))
    except (OSError, ValueError):
        return None
    return float(data["data"]["attributes"]["sample"].get("count", 0.0))
