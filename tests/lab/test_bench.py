"""The bench: its search and quantile arithmetic, and a real `--quick` run so it never rots.

The quick run's numbers are noise by design (seconds per step on a shared machine), so the
assertions are on structure and sanity only: ratios inside sane bounds, percentiles in order,
every acknowledged signup a row. Never on how fast anything was.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from matplotlib import image

from lab import _cgroup, topology
from lab.bench import _plan, _targets
from lab.bench._probe import Histogram
from lab.topology import load
from tests.conftest import child_env


def test_search_multiplies_until_a_step_breaks_then_bisects() -> None:
    plan = _plan.FULL
    assert _plan.next_rate(plan, [], []) == plan.start_rate
    assert _plan.next_rate(plan, [250], []) == 500
    middle = _plan.next_rate(plan, [250, 500, 1000, 2000], [4000])
    assert middle is not None
    assert 2000 < middle < 4000
    assert _plan.next_rate(plan, [2000, 2100], [2200]) is None  # within 10 %
    assert _plan.next_rate(plan, [], [250]) == 62  # even the first broke: look lower
    assert _plan.next_rate(plan, list(range(1, 13)), []) is None  # step budget spent


def test_quick_search_stays_within_its_budget() -> None:
    held: list[int] = []
    while (rate := _plan.next_rate(_plan.QUICK, held, [])) is not None:
        held.append(rate)
    assert len(held) == _plan.QUICK.max_search_steps


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1].
    hist = Histogram({0.1: 50, 0.5: 90, 1.0: 100, math.inf: 100})
    assert hist.quantile(0.5) == pytest.approx(0.1)
    assert hist.quantile(0.7) == pytest.approx(0.3)
    assert hist.quantile(0.95) == pytest.approx(0.75)
    earlier = Histogram({0.1: 50, 0.5: 50, 1.0: 50, math.inf: 50})
    assert hist.minus(earlier).quantile(0.5) == pytest.approx(0.35)  # rank 25 of 40 in (0.1, 0.5]
    assert Histogram({math.inf: 0}).quantile(0.5) is None


def test_a_phase_that_does_not_exist_yet_is_skipped_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(topology.PHASES, "phase3", tmp_path / "phase3-queue")
    reason = _targets.unavailable(_targets.PHASE_TARGETS["phase3"])
    assert reason is not None
    assert "does not exist yet" in reason


def test_budget_counts_what_serves_signups_not_the_observers() -> None:
    services, budget, skipped = _targets.resources(_targets.PHASE_TARGETS["phase1"])
    assert {"prometheus", "alertmanager", "postgres-exporter"} <= set(skipped)
    assert set(services) == {"app", "db"}
    topology = load("phase1")
    assert budget == pytest.approx((topology["app"].cpus or 0) + (topology["db"].cpus or 0))
    _, ceiling_budget, _ = _targets.resources(_targets.HTTP_CEILING)
    assert ceiling_budget == topology["app"].cpus


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    """TMPDIR for the bench, outside pytest's folder: a pytest session starting elsewhere on
    the machine resets /tmp/pytest-of-<user> to 0700, and the PostgreSQL server (running as
    the postgres account) could then no longer reach a data folder below it."""
    with tempfile.TemporaryDirectory(prefix="lab-bench-test-") as folder:
        yield Path(folder)


def _bench(out: Path, tmp: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.bench", "--quick", "--out", str(out), *extra],
        env=child_env(TMPDIR=str(tmp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _leftovers(tmp: Path) -> list[str]:
    """Processes that mention the bench's temporary folder (command line or environment)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        text = " ".join(proc.info["cmdline"] or []) + str(proc.info["environ"] or "")
        if str(tmp) in text:
            found.append(" ".join(proc.info["cmdline"] or [])[:120])
    return found


def _alive(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(proc.cmdline())[:120])
        except psutil.Error:
            continue
    return alive


def _check_measured(name: str, result: dict[str, Any]) -> None:
    assert result["status"] == "measured", (name, result)
    assert result["sustained_rate"] > 0, name
    assert result["cpu_budget_cores"] > 0
    assert result["per_core"] == pytest.approx(
        result["sustained_rate"] / result["cpu_budget_cores"]
    )
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert 0 <= result["error_rate"] < 1
    assert 0 <= result["dropped_share"] < 1
    assert result["search"]
    assert result["runs"]
    assert all(step["rate"] > 0 and step["sent"] >= 0 for step in result["search"])
    assert result["timeline"], "the sampler recorded nothing"
    per_1k = result["cpu_seconds_per_1k"]
    assert "app" in per_1k
    assert all(v is None or 0 <= v < 100 for v in per_1k.values())
    assert 0 < result["k6_cpu_seconds_per_1k"] < 100


@pytest.mark.e2e
def test_quick_bench_writes_json_table_and_plots(tmp_path: Path, server_tmp: Path) -> None:
    out, tmp = tmp_path / "results", server_tmp
    bench = _bench(out, tmp)
    output, _ = bench.communicate(timeout=540)
    warnings = [line for line in output.splitlines() if "WARNING" in line or "Error" in line]
    assert bench.returncode == 0, "\n".join(warnings) + "\n...\n" + output[-2000:]

    (json_file,) = out.glob("*-quick.json")
    results = json.loads(json_file.read_text())
    assert results["bench"]["quick"] is True
    assert results["bench"]["cpu_count"] >= 1
    assert "shares" in results["bench"]["note"]

    _check_measured("http_ceiling", results["ceilings"]["http"])
    pg = results["ceilings"]["postgres"]
    assert pg["insert_rows_per_s"] > 0
    assert pg["copy_staging_rows_per_s"] > 0
    assert pg["copy_into_users_rows_per_s"] > 0

    assert set(results["phases"]) == {"phase1", "phase2", "phase3"}
    for name, phase in results["phases"].items():
        if phase["status"] == "skipped":
            assert phase["reason"], name  # a phase not built yet says why
            continue
        _check_measured(name, phase)
        assert 0 < phase["vs_http_ceiling"] < 10
        assert 0 < phase["vs_postgres_inserts"] < 10
        assert phase["cpu_seconds_per_1k"].get("db", 0) > 0
        check = phase["rows_check"]
        assert check["missing"] == 0, f"{name} lost acknowledged signups: {check}"
        assert check["rows"] >= check["acknowledged"] > 0
    assert results["phases"]["phase1"]["status"] == "measured"
    phase3 = results["phases"]["phase3"]
    if phase3["status"] == "measured":
        a2r = phase3["accept_to_row"]
        assert a2r["count"] > 0
        assert 0 <= a2r["p50_s"] <= a2r["p95_s"]
        assert phase3["drain"]["backlog"] > 0
        assert phase3["drain"]["rows_per_s"] > 0
    assert len(results["goals"]) == 4

    table = json_file.with_suffix(".md").read_text()
    assert "QUICK SMOKE RUN" in table
    assert "| phase1 |" in table
    for suffix in ("throughput", "latency", "phases"):
        png = json_file.with_name(json_file.stem + f"-{suffix}.png")
        assert png.name in table
        assert image.imread(png).shape[0] > 100  # a real image, not an empty file

    assert _leftovers(tmp) == []
    assert list(tmp.iterdir()) == [], "the bench left its temporary folder behind"


@pytest.mark.e2e
def test_ctrl_c_stops_everything_the_bench_started(tmp_path: Path, server_tmp: Path) -> None:
    out, tmp = tmp_path / "results", server_tmp
    bench = _bench(out, tmp, "--phases", "phase1")
    assert bench.stdout is not None
    seen = []
    for line in bench.stdout:  # wait for a real condition: k6 is offering load
        seen.append(line)
        if "search step 1" in line:
            break
    else:
        pytest.fail("the bench ended before its first search step: " + "".join(seen)[-2000:])
    started = psutil.Process(bench.pid).children(recursive=True)
    assert len(started) > 1, "the stack is not running?"
    os.kill(bench.pid, signal.SIGINT)
    rest, _ = bench.communicate(timeout=120)
    assert bench.returncode == 130, rest[-2000:]
    assert "interrupted" in rest
    assert _alive(started) == []
    assert _leftovers(tmp) == []
    # The run's cgroups are named after the bench's pid (see _targets.measure).
    assert list(_cgroup.ROOT.glob(f"**/signup-lab/*-{bench.pid}")) == []
    assert list(tmp.iterdir()) == []
    assert not out.exists(), "an interrupted bench must not write results"
