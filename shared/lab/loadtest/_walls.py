"""Which service limited a rate: the one that ran into its CPU quota, with the evidence.

A rate is only worth publishing with the name of what stopped it. Each step's CPU per service
(cgroup accounting) is divided by that service's quota, and the CFS counters say in how many
periods the quota ran out. The service closest to its quota, if it is close, is the wall; if
none is, but the machine's cores are all busy, the machine is (or the load generator, when k6
itself used more of it than any service). The bench and every load test judge the same way.

The counters come from the cAdvisor-named series (`container_cpu_usage_seconds_total`, ...,
labelled with the compose service): the native supervisor's, or cAdvisor's under Docker.
"""

from __future__ import annotations

import os
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

SERVICE_LABEL = "container_label_com_docker_compose_service"
TICKS = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these
# Share of its quota a service must use, over a step, to count as the wall. Below 100 %
# because a service whose quota runs out in most 10 ms periods already queues requests.
AT_QUOTA = 0.85
# Share of the machine's cores that counts as a full machine.
MACHINE_FULL = 0.9
# Services whose replicas do not share the work: each Redis Cluster node holds its own slots,
# so one primary at its quota is the wall while the others idle. Summed with them it would
# read as a service at a third of its quota; each replica is counted on its own instead.
PER_REPLICA = frozenset({"redis-node"})


@dataclass(frozen=True)
class Counters:
    """Per compose service (replicas summed; each replica of a PER_REPLICA service on its own,
    by its container's name): the cgroup counters the supervisor exports."""

    cpu_seconds: dict[str, float]
    periods: dict[str, float]
    throttled_periods: dict[str, float]
    throttled_seconds: dict[str, float]
    quota_cores: dict[str, float]  # the service's quota times its replicas
    # When the counters were read, in Unix seconds, if the exporter says: cAdvisor serves
    # what it read at its last housekeeping, seconds before the scrape.
    at: float | None = None


_COUNTERS = {
    "container_cpu_usage_seconds_total": "cpu_seconds",
    "container_cpu_cfs_periods_total": "periods",
    "container_cpu_cfs_throttled_periods_total": "throttled_periods",
    "container_cpu_cfs_throttled_seconds_total": "throttled_seconds",
}


def cpu_by_service(containers_url: str) -> dict[str, float]:
    return counters(containers_url).cpu_seconds


def counters(containers_url: str, timeout: float = 3.0) -> Counters:
    """From the cAdvisor-named series at `containers_url`/metrics: per-service accounting."""
    with urllib.request.urlopen(f"{containers_url}/metrics", timeout=timeout) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {field: defaultdict(float) for field in _COUNTERS.values()}
    quota: dict[str, dict[str, float]] = defaultdict(dict)
    period: dict[str, float] = {}
    stamps: list[float] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            service = sample.labels.get(SERVICE_LABEL)
            if not service:
                continue
            if service in PER_REPLICA:
                service = sample.labels.get("name") or service
            if sample.name in _COUNTERS:
                found[_COUNTERS[sample.name]][service] += float(sample.value)
                if sample.timestamp is not None:
                    stamps.append(float(sample.timestamp))
            elif sample.name == "container_spec_cpu_quota":
                quota[service][sample.labels.get("name", "")] = float(sample.value)
            elif sample.name == "container_spec_cpu_period":
                period[service] = float(sample.value)
    cores = {
        service: sum(per_replica.values()) / period[service]
        for service, per_replica in quota.items()
        if period.get(service)
    }
    return Counters(
        **{k: dict(v) for k, v in found.items()},
        quota_cores=cores,
        at=min(stamps) if stamps else None,
    )


def busy_ticks() -> int:
    """Clock ticks all CPUs have been busy since boot, from /proc/stat: the whole machine, k6
    and everything else included."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return sum(fields[:8]) - fields[3] - fields[4]


def service_load(before: Counters, after: Counters, seconds: float) -> dict[str, dict[str, Any]]:
    """Per service over one step: cores used, its quota, the share of it, throttling."""
    load: dict[str, dict[str, Any]] = {}
    for service, cpu in sorted(after.cpu_seconds.items()):
        cores = max(0.0, cpu - before.cpu_seconds.get(service, 0.0)) / seconds
        quota = after.quota_cores.get(service)
        periods = after.periods.get(service, 0.0) - before.periods.get(service, 0.0)
        throttled = after.throttled_periods.get(service, 0.0) - before.throttled_periods.get(
            service, 0.0
        )
        stalled = after.throttled_seconds.get(service, 0.0) - before.throttled_seconds.get(
            service, 0.0
        )
        load[service] = {
            "cores": round(cores, 4),
            "quota_cores": quota,
            "used": round(cores / quota, 3) if quota else None,
            "throttled_share": round(throttled / periods, 3) if periods > 0 else None,
            "throttled_s": round(stalled, 3),
        }
    return load


def limiter(
    load: dict[str, dict[str, Any]],
    machine_cores: float,
    cores: int,
    k6_cores: float | None = None,
) -> dict[str, Any]:
    """{"service": the wall, "machine", "load generator" or None; "evidence": one line a
    person can check}."""
    at_quota = [
        (values["used"], service)
        for service, values in load.items()
        if values.get("used") is not None and values["used"] >= AT_QUOTA
    ]
    if at_quota:
        used, service = max(at_quota)
        values = load[service]
        throttled = values.get("throttled_share")
        return {
            "service": service,
            "evidence": (
                f"{service} used {values['cores']:.3f} of its {values['quota_cores']:g} cores "
                f"({used:.0%})"
                + (f", throttled in {throttled:.0%} of its CFS periods" if throttled else "")
            ),
        }
    if machine_cores >= MACHINE_FULL * cores:
        busiest = max((v["cores"] for v in load.values()), default=0.0)
        if k6_cores is not None and k6_cores > busiest:
            return {
                "service": "load generator",
                "evidence": (
                    f"no service at its quota; the machine was {machine_cores:.2f} of {cores} "
                    f"cores busy and k6 used {k6_cores:.2f} of them, more than any service"
                ),
            }
        with_k6 = f", k6 {k6_cores:.2f} of them" if k6_cores is not None else ""
        return {
            "service": "machine",
            "evidence": (
                f"no service at its quota; the machine was {machine_cores:.2f} of {cores} "
                f"cores busy (load generator included{with_k6})"
            ),
        }
    # The two nearest their quotas, with their throttling: two services at 80 % each are a
    # different story from one at 40 %.
    nearest = sorted(
        (s for s in load if load[s].get("used") is not None), key=lambda s: -load[s]["used"]
    )[:2]
    note = ", ".join(
        f"{s} at {load[s]['used']:.0%}"
        + (
            f" (throttled {load[s]['throttled_share']:.0%})"
            if load[s].get("throttled_share")
            else ""
        )
        for s in nearest
    )
    note = f" (busiest: {note})" if note else ""
    return {"service": None, "evidence": f"no service at its quota and the machine not full{note}"}


def _share(service: str, values: dict[str, Any]) -> str:
    throttled = values.get("throttled_share")
    return f"{service} at {values['used']:.0%}" + (
        f" (throttled {throttled:.0%})" if throttled else ""
    )
