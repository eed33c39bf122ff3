"""Every panel of every dashboard answers from a real Prometheus that scraped a real phase 1
under a real k6 smoke run: no Grafana here, so the dashboards' queries are run directly.

Phase 1 runs natively with Prometheus scraping every second (so rates have samples within
seconds), k6 sends a bounded smoke run with invalid and duplicate signups mixed in and pushes
its own metrics by remote write, and then each query must return at least one number (not
only NaN). The panels that cannot have data in phase 1 are listed below with the reason, and
must indeed be empty, so the list cannot go stale.
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
from prometheus_client.parser import text_string_to_metric_families

from lab import _k6, dashboards
from lab._promapi import Prometheus
from lab.stack import Stack, running

pytestmark = pytest.mark.e2e

# Panels with no data against native phase 1, and why.
NO_DATA_IN_PHASE1 = {
    # Phase 2's nginx and PgBouncer (and their exporters) do not exist in phase 1.
    "signup-capacity/nginx Connections": "no nginx in phase 1",
    "signup-capacity/nginx Requests": "no nginx in phase 1",
    "signup-capacity/PgBouncer Clients": "no PgBouncer in phase 1",
    "signup-capacity/PgBouncer Client Max Wait": "no PgBouncer in phase 1",
    "signup-capacity/PgBouncer Server Connections": "no PgBouncer in phase 1",
    # Phase 3's stream, writer and Redis do not exist in phase 1.
    "signup-capacity/Queue Depth": "no stream in phase 1",
    "signup-capacity/Queue Lag": "no stream in phase 1",
    "signup-capacity/Writer Batch Size": "no writer in phase 1",
    "signup-capacity/Writer Flush Time": "no writer in phase 1",
    "signup-capacity/Writer Rows Inserted": "no writer in phase 1",
    "signup-capacity/Duplicates Dropped and Redeliveries": "no writer in phase 1",
    "signup-capacity/Writer Errors": "no writer in phase 1",
    "signup-capacity/Redis Memory": "no Redis in phase 1",
    # The native runtime accounts CPU and memory per service (cgroups), not network traffic.
    "signup-capacity/Network I/O": "cAdvisor-only series; the native runtime has none",
}
SMOKE_SECONDS = 8
DEADLINE = 30.0


def wait_for(what: str, condition: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(0.2)


def app_requests_total(stack: Stack) -> float:
    with urllib.request.urlopen(f"{stack.url}/metrics", timeout=5) as response:  # noqa: S310
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
    stack: Stack
    meta: dict[str, float]
    results: Path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Phase 1 after a k6 smoke run, every target up, and Prometheus caught up with it."""
    folder = tmp_path_factory.mktemp("panels-phase1")
    interval = {"prometheus": {"LAB_SCRAPE_INTERVAL": "1s"}}
    with running("phase1", folder / "run", environment=interval) as stack:
        prometheus = Prometheus(stack.prometheus_url)
        wait_for(
            "every scrape target up",
            lambda: all(t["health"] == "up" for t in prometheus.targets()),
        )
        results = folder / "results"
        env = {
            **os.environ,
            "BASE_URL": stack.url,
            "PHASE": "phase1",
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
        served = app_requests_total(stack)
        assert served > 0

        def caught_up() -> bool:
            result = prometheus.query('sum(signup_requests_total{phase="phase1"})', time.time())
            k6 = prometheus.query('sum(k6_http_reqs_total{phase="phase1"})', time.time())
            return bool(result) and result[0].values[0] >= served and bool(k6)

        wait_for("Prometheus to scrape the whole smoke run and k6's pushes", caught_up)
        yield Loaded(stack, meta, results)


def test_every_target_is_up_and_every_rule_evaluates(loaded: Loaded) -> None:
    stack = loaded.stack
    prometheus = Prometheus(stack.prometheus_url)
    jobs = {t["labels"]["job"]: t["health"] for t in prometheus.targets()}
    assert jobs == {
        job: "up" for job in ("signup-server", "postgres", "cadvisor", "prometheus", "alertmanager")
    }
    rules = prometheus.rules()
    assert len([r for r in rules if r["type"] == "alerting"]) == 11
    assert {r["health"] for r in rules} == {"ok"}, [r.get("lastError") for r in rules]
    # A healthy phase 1 under a smoke run: none of these may even be pending. (The error and
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


def test_every_panel_query_returns_data(loaded: Loaded) -> None:
    stack, meta = loaded.stack, loaded.meta
    prometheus = Prometheus(stack.prometheus_url)
    start, end = float(meta["started_at"]) - 2, time.time()
    step = 1.0
    empty: dict[str, list[str]] = {}
    for board in dashboards.load():
        for panel in board.panels:
            for query in panel.queries:
                expr = dashboards.substitute(
                    query.expr,
                    phase="phase1",
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
                    empty.setdefault(panel.key, []).append(query.ref)
    # A panel is "empty" when none of its queries has data.
    panel_queries = {p.key: len(p.queries) for p in dashboards.panels()}
    empty_panels = {key for key, refs in empty.items() if len(refs) == panel_queries[key]}
    assert empty_panels == set(NO_DATA_IN_PHASE1)
    # Panels with several queries must have data in every one (a typo in one would hide).
    partly = {key: refs for key, refs in empty.items() if key not in empty_panels}
    assert partly == {}


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
    # Exactly the panels the live query test found empty say "no data" in the index.
    no_data = {line for line in index.splitlines() if line.endswith("(no data)")}
    assert len(no_data) == len(NO_DATA_IN_PHASE1)
