"""Which service limited a rate: the one that ran into its CPU quota, with the evidence.

A rate is only worth publishing with the name of what stopped it. Each step's CPU per service
(cgroup accounting) is divided by that service's quota, and the CFS counters say in how many
periods the quota ran out. The service closest to its quota, if it is close, is the wall; if
none is, but the machine's cores are all busy, the machine (and the load generator on it) is.
"""

from __future__ import annotations

from typing import Any

from lab.bench._probe import Counters

# Share of its quota a service must use, over a step, to count as the wall. Below 100 %
# because a service whose quota runs out in most 10 ms periods already queues requests.
AT_QUOTA = 0.85
# Share of the machine's cores that counts as a full machine.
MACHINE_FULL = 0.9


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


def limiter(load: dict[str, dict[str, Any]], machine_cores: float, cores: int) -> dict[str, Any]:
    """{"service": the wall or "machine" or None, "evidence": one line a person can check}."""
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
        return {
            "service": "machine",
            "evidence": (
                f"no service at its quota; the machine was {machine_cores:.2f} of {cores} "
                "cores busy (load generator included)"
            ),
        }
    busiest = max(load, key=lambda s: load[s].get("used") or 0.0, default=None)
    note = f" (busiest: {busiest} at {load[busiest].get('used') or 0:.0%})" if busiest else ""
    return {"service": None, "evidence": f"no service at its quota and the machine not full{note}"}
