"""`make bench PART=failover`: phase 4 losing a primary's host under load, with and without WAIT,
and growing by a primary under load.

Phase 4 natively (nodes on hosts of their own, monitoring left out), k6 on the host at a
constant RATE for DURATION (loadtests/rate.js). CUT_AT seconds in, the host of one primary
loses its link (lab.native._hosts): for clients and for the other nodes alike it is gone. The
run watches the cluster until the replica is promoted, keeps the host away HOST_AWAY seconds
more, then brings it back, when it rejoins as the new primary's replica. Two scenarios:

- `host lost`: replication healthy, the writer draining as usual;
- `replica behind`: the replica's host is cut off LAG_S seconds before the primary's, and
  comes back when the primary's host goes: it missed what the primary took meanwhile, the
  case that asynchronous replication loses and WAIT is for.

- `grown`: no loss at all; two spare nodes join as a fourth primary and its replica, and a
  quarter of the slots move onto them while the signups arrive (`make cluster-grow`).

Each in both modes (SIGNUP_WAIT_REPLICAS=1 and 0), on a fresh stack each time. After k6, the
writer drains every shard; an acknowledged signup (202) with no row is lost. k6 tags each
answer with its VU and iteration, which name the email it sent (loadtests/lib/payloads.js), so
the loss is counted signup by signup, not by totals: a 503 whose signup was kept (WAIT timed
out) becomes a row, but was never acknowledged.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import redis

from lab.bench import _failover_report
from lab.bench._targets import observers
from lab.loadtest import _k6, _run_wall
from lab.native import _hosts
from lab.native.components import redis_cluster
from lab.native.stack import Stack, running
from lab.runtime import http_ok
from lab.topology import REPO, load

MODES: dict[str, dict[str, str]] = {  # the app's environment in each mode
    "WAIT 1": {"SIGNUP_WAIT_REPLICAS": "1"},
    "no WAIT": {"SIGNUP_WAIT_REPLICAS": "0"},
}
SCENARIOS = _failover_report.SCENARIOS
RATE, DURATION, CUT_AT, HOST_AWAY, LAG_S = 300, 45, 12, 5, 3
RUNS = 2


class FailoverError(RuntimeError):
    """A run of the part could not be read; the message says where to look."""


def _redis(address: str) -> redis.Redis:
    host, port = address.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), socket_timeout=1, socket_connect_timeout=1)


def roles(address: str) -> dict[str, str | None]:
    """Every node's primary as `address` sees it: None for a primary that serves slots."""
    with _redis(address) as client:
        nodes = client.execute_command("CLUSTER NODES")
    by_id = {info["node_id"]: addr.split("@")[0] for addr, info in nodes.items()}
    return {
        addr.split("@")[0]: (
            None if "master" in info["flags"] and info["slots"] else by_id.get(info["master_id"])
        )
        for addr, info in nodes.items()
    }


class Timeline:
    """The run's events (Unix seconds) and, every half second, the writer's backlog."""

    def __init__(self, writer_metrics: str) -> None:
        self.events: dict[str, float] = {}
        self.backlog: list[tuple[float, float]] = []
        self._url = writer_metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def mark(self, event: str) -> None:
        self.events[event] = time.time()
        print(f"failover:   {event}", flush=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with urllib.request.urlopen(self._url, timeout=1) as response:  # noqa: S310
                    text = response.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("signup_queue_depth "):
                    self.backlog.append((time.time(), float(line.split()[1])))

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _wait(condition: Any, timeout: float, what: str) -> None:
    until = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > until:
            raise FailoverError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def disturb(stack: Stack, scenario: str, timeline: Timeline) -> None:
    """Cut a primary's host (and for `replica behind` its replica's first), wait for the
    promotion, keep the host away HOST_AWAY s more, bring it back, wait until it rejoined.
    Or, for `grown`, add a primary and its replica and rebalance."""
    members = list(stack.ctx.members["redis-node"])
    if scenario == "grown":
        timeline.mark("growing")
        try:
            redis_cluster.grow(members)
        except redis_cluster.GrowError as exc:
            raise FailoverError(str(exc)) from exc
        timeline.mark("grown")
        return
    hosts = _hosts.Hosts(len(members))
    view = roles(members[0])
    primary = next(a for a, of in view.items() if of is None)
    replica = next(a for a, of in view.items() if of == primary)
    others = [a for a in members if a != primary]

    def index(address: str) -> int:
        return members.index(address) + 1

    if scenario == "replica behind":
        hosts.set_link(index(replica), up=False)
        timeline.mark("replica cut off")
        time.sleep(LAG_S)
    hosts.set_link(index(primary), up=False)
    timeline.mark("primary's host lost")
    if scenario == "replica behind":
        hosts.set_link(index(replica), up=True)
    try:
        _wait(
            lambda: all(roles(a).get(replica, "?") is None for a in others),
            60,
            "the replica promoted",
        )
        timeline.mark("replica promoted")
        time.sleep(HOST_AWAY)
    finally:
        hosts.set_link(index(primary), up=True)
    timeline.mark("host back")
    _wait(lambda: synced(primary, replica), 60, "the old primary resynchronised as replica")
    timeline.mark("rejoined as replica")


def synced(node: str, primary: str) -> bool:
    """`node` replicates `primary`, its copy complete (what a WAIT on `primary` needs): the
    cluster's view says so before the full resynchronisation is done."""
    with _redis(node) as client:
        info = client.info("replication")
    return bool(
        info.get("role") == "slave"
        and f"{info.get('master_host')}:{info.get('master_port')}" == primary
        and info.get("master_link_status") == "up"
    )


# (Unix seconds the answer came, HTTP status, ms it took, email sent)
Answer = tuple[float, str, float, str]


def answers(path: Path, run_id: str) -> list[Answer]:
    """Every POST /signup of k6's CSV (K6_CSV_TIME_FORMAT=unix_milli, system tags vu and iter,
    which k6 writes into the `metadata` column): the email is u-<run id>-<vu>-<iteration + 1>
    (every request of the run is a new signup)."""
    if not path.exists():
        raise FailoverError(f"k6 wrote no CSV at {path}: see its output")
    found = []
    with path.open() as file:
        for r in csv.DictReader(file):
            if r["metric_name"] != "http_req_duration" or r["name"] != "POST /signup":
                continue
            meta = dict(urllib.parse.parse_qsl(r.get("metadata") or ""))
            if "vu" not in meta or "iter" not in meta:
                raise FailoverError(f"{path}: k6 wrote no vu and iter (--system-tags)")
            email = f"u-{run_id}-{meta['vu']}-{int(meta['iter']) + 1}@signup-lab.test"
            found.append(
                (float(r["timestamp"]) / 1000, r["status"], float(r["metric_value"]), email)
            )
    return found


def rows(database_url: str, run_id: str) -> set[str]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        found = conn.execute(
            "SELECT email FROM users WHERE email LIKE %s", (f"u-{run_id}-%",)
        ).fetchall()
    return {email for (email,) in found}


def p95(values: list[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1) if ordered else None


def verdict(found: list[Answer], stored: set[str], events: Mapping[str, float]) -> dict[str, Any]:
    """Answers by status before, during (host lost to rejoined, or growing to grown) and
    after; lost signups; p95."""
    lost_at = events.get("primary's host lost", events.get("growing", 0.0))
    back = events.get("rejoined as replica", events.get("grown", 0.0))
    promoted = events.get("replica promoted")
    acknowledged = [a for a in found if a[1] == "202"]
    outside = [ms for t, s, ms, _ in acknowledged if not lost_at <= t - ms / 1000 <= back]

    def period(start: float, end: float) -> dict[str, int]:
        return dict(Counter(s for t, s, ms, _ in found if start <= t - ms / 1000 < end))

    return {
        "promotion_s": None if promoted is None else round(promoted - lost_at, 2),
        "disturbed_s": round(back - lost_at, 2),
        "answers": {
            "before": period(0, lost_at),
            "during": period(lost_at, back),
            "after": period(back, float("inf")),
        },
        "acknowledged": len(acknowledged),
        "lost": sorted(email for _, _, _, email in acknowledged if email not in stored),
        "p95_ms": {
            "acknowledged": p95([ms for _, _, ms, _ in acknowledged]),
            "acknowledged_outside_failover": p95(outside),
        },
    }


def run_once(work: Path, mode: str, scenario: str, rate: int, seconds: int) -> dict[str, Any]:
    run_id = f"fo{int(time.time())}"
    skip = observers(load("phase4"))
    environment = {"app": MODES[mode]}
    variables = {"REDIS_NODES": "8"} if scenario == "grown" else {}
    with running("phase4", work, variables=variables, environment=environment, skip=skip) as stack:
        writer = stack.entry("writer").spec.url
        assert writer is not None
        out = work / "k6.csv"
        env = {
            **os.environ,
            "PHASE": "phase4",
            "PROMETHEUS_URL": "http://127.0.0.1:9",
            "BASE_URL": stack.url,
            "RATE": str(rate),
            "DURATION": f"{seconds}s",
            "RUN_ID": run_id,
            "K6_CSV_TIME_FORMAT": "unix_milli",
            "SUMMARY_JSON": str(work / "k6.summary.json"),
        }
        command = [
            _k6.binary(),
            "run",
            "--quiet",
            "--system-tags",
            "status,name,scenario,method,vu,iter",
            "--out",
            f"csv={out}",
            "loadtests/rate.js",
        ]
        sampler = _run_wall.WallSampler(f"http://127.0.0.1:{stack.ctx.ports.containers}")
        with Timeline(writer) as timeline:
            process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
            sampler.start(process.pid)
            started = time.time()
            try:
                _wait(lambda: time.time() - started >= CUT_AT, CUT_AT + 5, "the cut")
                disturb(stack, scenario, timeline)
            finally:
                process.wait(timeout=seconds + 120)
                sampler.stop()
            _wait(lambda: drained(writer), 120, "every shard drained")
        found = answers(out, run_id)
        result = verdict(found, rows(stack.database_url(), run_id), timeline.events)
        wall = sampler.window(min(t for t, *_ in found), max(t for t, *_ in found))
    return {
        "mode": mode,
        "scenario": scenario,
        "rate": rate,
        **result,
        "events": timeline.events,
        "per_second": per_second(found),
        "backlog": [(round(t, 1), v) for t, v in timeline.backlog],
        "cpu_ms_per_signup": cpu_per_signup(wall, result["acknowledged"]),
    }


def drained(writer_metrics: str) -> bool:
    if not http_ok(writer_metrics):
        return False
    with urllib.request.urlopen(writer_metrics, timeout=2) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    depth = [line for line in text.splitlines() if line.startswith("signup_queue_depth ")]
    return bool(depth) and float(depth[0].split()[1]) == 0


def per_second(found: list[Answer]) -> dict[str, list[int]]:
    """Answers per status in each second since the first (for the plot)."""
    start = int(min(t for t, *_ in found))
    length = int(max(t for t, *_ in found)) - start + 1
    series: dict[str, list[int]] = {}
    for t, status, _, _ in found:
        series.setdefault(status, [0] * length)[int(t) - start] += 1
    return {"start": [start], **series}


def cpu_per_signup(wall: Mapping[str, Any] | None, acknowledged: int) -> dict[str, float]:
    """CPU milliseconds per acknowledged signup of the apps and of the Redis nodes together."""
    if not wall or not acknowledged:
        return {}
    services = wall["services"]
    seconds = wall["seconds"]
    spent: dict[str, float] = {}
    for name, used in services.items():
        kind = "app" if name.startswith("app") else "redis" if name.startswith("redis") else None
        if kind:
            spent[kind] = spent.get(kind, 0.0) + used["cores"] * seconds
    return {k: round(v * 1000 / acknowledged, 3) for k, v in spent.items()}


def collect(work: Path, runs: int = RUNS, rate: int = RATE, seconds: int = DURATION) -> Any:
    result: dict[str, Any] = {
        "rate": rate,
        "duration_s": seconds,
        "cut_at_s": CUT_AT,
        "host_away_s": HOST_AWAY,
        "lag_s": LAG_S,
        "runs": [],
    }
    for i in range(runs):
        for scenario in SCENARIOS:
            for mode in MODES:
                print(f"failover: {scenario}, {mode}, run {i + 1}/{runs}", flush=True)
                folder = work / f"{i}-{scenario.replace(' ', '-')}-{mode.replace(' ', '-')}"
                one = run_once(folder, mode, scenario, rate, seconds)
                result["runs"].append({"run": i + 1, **one})
    return result


def main(out: Path, work: Path, host: str, date: str, quick: bool) -> list[Path]:
    """Measure, then write <date>-<host>-failover(.json, .md, .png) into `out`."""
    reason = _hosts.available()
    if reason is not None:
        raise FailoverError(f"the failover part needs hosts of their own: {reason}")
    result = collect(work, runs=1, seconds=35) if quick else collect(work)
    result["bench"] = {"part": "failover", "host": host, "date": date, "quick": quick}
    stem = f"{date}-{host}-failover" + ("-quick" if quick else "")
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    return replot(json_path)


def replot(json_path: Path) -> list[Path]:
    """The run's Markdown and plot, again, from its JSON."""
    return _failover_report.write(json_path)
