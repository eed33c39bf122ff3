"""Every panel of every dashboard answers from a real Prometheus that scraped a real phase
under a real k6 smoke run: no Grafana here, so the dashboards' queries are run directly.

Each phase runs natively with Prometheus scraping every second (so rates have samples within
seconds), k6 sends a bounded smoke run with invalid and duplicate signups mixed in and pushes
its own metrics by remote write, and then each query must return at least one number (not
only NaN). What cannot have data in a phase is listed below with the reason, and must indeed
be empty, so the lists cannot go stale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lab.loadtest import _k6
from lab.native import render
from lab.native.components import monitoring
from lab.native.stack import Stack, running
from lab.report import dashboards
from lab.report._promapi import Prometheus
from lab.topology import REPO

ALERTING_RULES = sum(
    1
    for path in (REPO / "monitoring" / "prometheus" / "rules").glob("*.yml")
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
)
pytestmark = pytest.mark.e2e
ALL = frozenset("ABCDEFGH")  # every query of the panel

PHASE2_PANELS = {
    "signup-capacity/nginx Connections": "no nginx before phase 2",
    "signup-capacity/nginx Requests": "no nginx before phase 2",
    "signup-capacity/PgBouncer Clients": "no PgBouncer before phase 2",
    "signup-capacity/PgBouncer Client Max Wait": "no PgBouncer before phase 2",
    "signup-capacity/PgBouncer Server Connections": "no PgBouncer before phase 2",
}
PHASE3_PANELS = {
    "signup-capacity/Queue Depth": "no stream before phase 3",
    "signup-capacity/Queue Lag": "no stream before phase 3",
    "signup-capacity/Writer Batch Size": "no writer before phase 3",
    "signup-capacity/Writer Flush Time": "no writer before phase 3",
    "signup-capacity/Writer Rows Inserted": "no writer before phase 3",
    "signup-capacity/Duplicates Dropped and Redeliveries": "no writer before phase 3",
    "signup-capacity/Writer Errors": "no writer before phase 3",
    "signup-capacity/Redis Memory": "no Redis before phase 3",
}
PHASE4_PANELS = {
    "signup-capacity/Cluster Slots": "no Redis Cluster before phase 4",
    "signup-capacity/Primaries and Replicas": "no Redis Cluster before phase 4",
    "signup-capacity/Replica Lag": "no Redis replica before phase 4",
    "signup-capacity/Cluster Epoch": "no Redis Cluster before phase 4",
}
REDIS = {"signup-capacity/Commands per Node": "no Redis before phase 3"}
# The native runtime accounts CPU and memory per service (cgroups), not network traffic.
NATIVE = {"signup-capacity/Network I/O": "cAdvisor-only series; the native runtime has none"}
# Phase 3's app writes no row itself: it queues, and has no PostgreSQL pool.
NO_POOL = {"signup-overview/Connection Pool Usage": "the phase 3 app has no database pool"}
# Panel -> the queries (refIds) with no data in that phase; ALL for the whole panel.
NO_DATA: dict[str, dict[str, frozenset[str]]] = {
    "phase1": dict.fromkeys(
        {**PHASE2_PANELS, **PHASE3_PANELS, **PHASE4_PANELS, **REDIS, **NATIVE}, ALL
    ),
    "phase2": dict.fromkeys({**PHASE3_PANELS, **PHASE4_PANELS, **REDIS, **NATIVE}, ALL),
    "phase3": {
        **dict.fromkeys({**PHASE4_PANELS, **NATIVE, **NO_POOL}, ALL),
        # "app overhead" is p95 request minus p95 insert_user: no insert_user in phase 3.
        "signup-traffic/Database Query Time": frozenset("B"),
        # No pool waits to measure (the gauge of requests waiting is there, at 0).
        "signup-capacity/Pool Wait": frozenset("A"),
    },
    # Phase 3's app on a cluster: the same gaps as phase 3, and every cluster panel answers.
    "phase4": {
        **dict.fromkeys({**NATIVE, **NO_POOL}, ALL),
        "signup-traffic/Database Query Time": frozenset("B"),
        "signup-capacity/Pool Wait": frozenset("A"),
    },
}
SMOKE_SECONDS = 8
DEADLINE = 30.0


def wait_for(what: str, condition: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(0.2)


def app_requests_total(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "signup_requests"
        for sample in family.samples
        if sample.name == "signup_requests_total"
    )


@dataclass(frozen=True)
class Loaded:
    phase: str
    stack: Stack
    meta: dict[str, float]
    results: Path


@pytest.fixture(scope="module", params=list(NO_DATA))
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    """A phase after a k6 smoke run, every target up, and Prometheus caught up with it."""
    phase: str = request.param
    folder = tmp_path_factory.mktemp(f"panels-{phase}")
    interval = {"prometheus": {"LAB_SCRAPE_INTERVAL": "1s"}}
    with running(phase, folder / "run", environment=interval) as stack:
        prometheus = Prometheus(stack.prometheus_url)
        wait_for(
            "every scrape target up",
            lambda: all(t["health"] == "up" for t in prometheus.targets()),
        )
        results = folder / "results"
        env = {
            **os.environ,
            "BASE_URL": stack.url,
            "PHASE": phase,
            "PROMETHEUS_URL": stack.prometheus_url,
            "MIX": "invalid=0.1,duplicate=0.05",  # so the error panels have errors to show
            "LOADTEST_RESULTS_DIR": str(results),
        }
        env.pop("TARGET", None)
        command = [sys.executable, "-m", "lab.loadtest", "smoke", "--quiet"]
        smoke = subprocess.run(
            [*command, "--duration", f"{SMOKE_SECONDS}s"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Thresholds crossed (a slow shared machine) still leaves the traffic we need.
        assert smoke.returncode in (0, _k6.THRESHOLDS_CROSSED), smoke.stdout + smoke.stderr
        (meta_file,) = results.glob("*.meta.json")
        meta = json.loads(meta_file.read_text())
        # Requests the app served (phase 1: the app is the entry; behind nginx: every replica).
        served = sum(app_requests_total(f"http://{member}") for member in stack.ctx.members["app"])
        assert served > 0

        def caught_up() -> bool:
            now = time.time()
            result = prometheus.query(f'sum(signup_requests_total{{phase="{phase}"}})', now)
            k6 = prometheus.query(f'sum(k6_http_reqs_total{{phase="{phase}"}})', now)
            return bool(result) and result[0].values[0] >= served and bool(k6)

        wait_for("Prometheus to scrape the whole smoke run and k6's pushes", caught_up)
        yield Loaded(phase, stack, meta, results)


def test_every_target_is_up_and_every_rule_evaluates(loaded: Loaded) -> None:
    prometheus = Prometheus(loaded.stack.prometheus_url)
    jobs = {t["labels"]["job"]: t["health"] for t in prometheus.targets()}
    scraped = render.DOCKER_SERVICES[loaded.phase]
    assert jobs == {job: "up" for job, svc in monitoring.JOBS.items() if svc in scraped}
    rules = prometheus.rules()
    # Every alerting rule of the committed files was loaded (none silently dropped).
    assert len([r for r in rules if r["type"] == "alerting"]) == ALERTING_RULES
    assert {r["health"] for r in rules} == {"ok"}, [r.get("lastError") for r in rules]
    # A healthy phase under a smoke run: none of these may even be pending. (The error and
    # validation ones may: the run sends 10% invalid signups on purpose.)
    active = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}
    for name in (
        "SignupServiceDown",
        "SignupWriterStopped",
        "SignupDatabaseConnectionsHigh",
        "SignupHighServerErrors",
        "SignupQueueLagGrowing",
        "SignupTrafficSpike",
    ):
        assert active[name] == "inactive", name


def empty_queries(loaded: Loaded) -> dict[str, frozenset[str]]:
    """Panel -> the refIds of its queries that returned no number over the smoke run."""
    prometheus = Prometheus(loaded.stack.prometheus_url)
    start, end = float(loaded.meta["started_at"]) - 2, time.time()
    step = 1.0
    empty: dict[str, set[str]] = {}
    for board in dashboards.load():
        for panel in board.panels:
            for query in panel.queries:
                expr = dashboards.substitute(
                    query.expr,
                    phase=loaded.phase,
                    instance=".*",
                    rate_interval=dashboards.duration(dashboards.rate_interval(step, 1.0)),
                    range_=dashboards.duration(end - start),
                    interval=dashboards.duration(step),
                    variables=board.variables,
                )
                if query.instant:
                    series = prometheus.query(expr, end)
                else:
                    series = prometheus.query_range(expr, start, end, step)
                if not any(s.has_data() for s in series):
                    empty.setdefault(panel.key, set()).add(query.ref)
    return {key: frozenset(refs) for key, refs in empty.items()}


def expected_empty(phase: str) -> dict[str, frozenset[str]]:
    """NO_DATA of the phase with ALL resolved to the panel's own refIds."""
    refs = {p.key: frozenset(q.ref for q in p.queries) for p in dashboards.panels()}
    return {key: refs[key] & which for key, which in NO_DATA[phase].items()}


def test_every_panel_query_returns_data(loaded: Loaded) -> None:
    # Exactly the listed queries are empty: every other query of every panel has data, and
    # every listed one really has none (or the list would hide a panel that broke).
    assert empty_queries(loaded) == expected_empty(loaded.phase)


@pytest.mark.parametrize("loaded", ["phase1"], indirect=True)  # once is enough
def test_report_draws_every_panel_of_the_last_run(loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = [sys.executable, "-m", "lab.report", "--prometheus", loaded.stack.prometheus_url]
    done = subprocess.run(
        [*report, "--results-dir", str(loaded.results), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    all_panels = list(dashboards.panels())
    # The range is the smoke run's, and progress is shown panel by panel.
    assert f"load test {loaded.meta['test_id']}" in done.stdout
    assert f"[{len(all_panels)}/{len(all_panels)}]" in done.stdout
    pngs = sorted(out.glob("*/*.png"))
    assert len(pngs) == len(all_panels)
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.shape[0] >= 300  # a real picture, at least 300 px high
        assert image.shape[1] >= 600
    index = (out / "index.md").read_text()
    for panel in all_panels:
        assert panel.title in index
    # The panels without any data say so in the index, and only those.
    no_data = [line for line in index.splitlines() if line.endswith("(no data)")]
    assert len(no_data) == len(NO_DATA["phase1"])
