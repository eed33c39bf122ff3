"""Reading numbers off running processes: /metrics pages and k6's REST API (the cgroup
counters are lab.loadtest._walls').

The bench reads the same series Prometheus would scrape, straight from their source, so it
needs no Prometheus of its own (one fewer process sharing the 2 cores).
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


def fetch(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


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
    def scrape(cls, urls: Iterable[str], name: str, **match: str) -> Histogram:
        """Summed over processes and over every series whose labels include `match`."""
        buckets: dict[float, float] = defaultdict(float)
        for labels, value in scrape(urls, f"{name}_bucket"):
            if all(labels.get(k) == v for k, v in match.items()):
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
