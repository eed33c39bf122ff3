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
from lab.bench import _cost, _plan, _scale, _scale_report, _targets, _walls
from lab.bench._probe import Counters, Histogram
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
    assert _plan.next_rate(plan, [], [250]) == 125  # even the first broke: look lower
    assert _plan.next_rate(plan, list(range(1, 13)), []) is None  # step budget spent


def test_a_search_can_start_from_a_prediction() -> None:
    plan = _plan.SCALE
    assert _plan.next_rate(plan, [], [], start=540) == 540
    assert _plan.next_rate(plan, [540], [], start=540) == round(540 * plan.factor)
    # The prediction broke: look below it by the step the search climbs with.
    assert _plan.next_rate(plan, [], [540], start=540) == round(540 / plan.factor)


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


def _counters(cpu: dict[str, float], throttled: dict[str, float]) -> Counters:
    return Counters(
        cpu_seconds=cpu,
        periods={s: 1000.0 for s in cpu},
        throttled_periods=throttled,
        throttled_seconds={s: t / 100 for s, t in throttled.items()},
        quota_cores={"app": 0.3, "db": 0.15},
    )


def test_the_wall_is_the_service_at_its_quota_with_its_counters_as_evidence() -> None:
    before = _counters({"app": 10.0, "db": 5.0}, {"app": 0.0, "db": 0.0})
    # Over 10 s: the app used 0.2 of its 0.3 cores, the database 0.145 of 0.15.
    after = _counters({"app": 12.0, "db": 6.45}, {"app": 100.0, "db": 700.0})
    load = _walls.service_load(before, after, 10.0)
    assert load["db"]["used"] == pytest.approx(0.967, abs=0.001)
    assert load["app"]["throttled_share"] is None  # periods did not advance in this fake
    wall = _walls.limiter(load, machine_cores=0.9, cores=2)
    assert wall["service"] == "db"
    assert "0.145 of its 0.15 cores" in wall["evidence"]


def test_without_a_service_at_its_quota_a_full_machine_is_named_else_nothing() -> None:
    load = {"app": {"cores": 0.1, "quota_cores": 0.3, "used": 0.33, "throttled_share": 0.0}}
    assert _walls.limiter(load, machine_cores=1.9, cores=2)["service"] == "machine"
    nothing = _walls.limiter(load, machine_cores=0.8, cores=2)
    assert nothing["service"] is None
    assert "busiest: app at 33%" in nothing["evidence"]


def test_the_scale_model_profile_is_the_compose_variables_it_sets(tmp_path: Path) -> None:
    quotas = _scale.profile()
    assert quotas["LAB_CPU_PERIOD_US"] == "10000"
    for phase in ("phase1", "phase2", "phase3"):
        target = _scale.target(phase, 2, quotas)
        topology = target.topology()
        assert topology["db"].cpus == float(quotas["DB_CPUS"])  # the same database everywhere
        assert topology["app"].cpus == float(quotas["APP_CPUS"])
    bad = tmp_path / "bad.env"
    bad.write_text("# a comment\nDB_CPUS=0.1\nAPP_CPUS 0.1\n")
    with pytest.raises(ValueError, match=r"bad.env:3: 'APP_CPUS 0.1' is not KEY=VALUE"):
        _scale.profile(bad)


def _point(replicas: int, rate: int, wall: str) -> dict[str, Any]:
    return {"replicas": replicas, "sustained_rate": rate, "limited_by": wall}


def test_scale_goals_read_the_sweeps_and_the_burst() -> None:
    scale: dict[str, Any] = {
        "phases": {
            "phase2": [_point(1, 300, "app"), _point(2, 560, "app"), _point(3, 600, "db")],
            "phase3": [_point(1, 290, "app"), _point(4, 1000, "redis")],
        },
        "burst": {
            "phase3": {"acknowledged_share": 1.0, "within_slo": True, "rows": 9, "acknowledged": 9}
        },
    }
    met = {g["goal"]: g["met"] for g in _scale_report.goals(scale)}
    assert list(met.values()) == [True, True, True, True, True]
    scale["phases"]["phase2"][-1]["limited_by"] = "app"
    scale["burst"]["phase3"]["rows"] = 8
    met = {g["goal"]: g["met"] for g in _scale_report.goals(scale)}
    assert list(met.values()) == [True, False, True, True, False]


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


def _check_scale_model(scale: dict[str, Any]) -> None:
    """The shape a script may rely on, and what no run of any speed may break."""
    assert scale["errors"] == {}
    assert scale["quotas"] == _scale.profile()
    assert len(scale["phases"]["phase1"]) == 1
    for phase in ("phase2", "phase3"):
        points = scale["phases"][phase]
        assert [p["replicas"] for p in points] == list(range(1, len(points) + 1)), phase
    for phase, points in scale["phases"].items():
        for point in points:
            assert point["sustained_rate"] > 0, (phase, point)
            assert point["limited_by"] is None or isinstance(point["limited_by"], str)
            assert point["evidence"]
            assert point["cores"]["app"] > 0
            assert 0 < point["k6_cores"] <= (os.cpu_count() or 1)
            assert point["machine_cores"] > 0
            step = point["evidence_step"]
            assert step["load"]["db"]["quota_cores"] == float(scale["quotas"]["DB_CPUS"])
    for phase in ("phase2", "phase3"):
        burst = scale["burst"][phase]
        assert burst["offered"] > 0
        assert 0 < burst["acknowledged"] <= burst["offered"]
        assert isinstance(burst["within_slo"], bool)
        assert burst["rows"] >= burst["acknowledged"], f"{phase} lost acknowledged signups"
        assert burst["timeline"]
    # Phase 3 writes exactly what it acknowledged: nothing lost, nothing twice.
    assert scale["burst"]["phase3"]["rows"] == scale["burst"]["phase3"]["acknowledged"]
    assert len(scale["goals"]) == 5


def _check_cost(cost: dict[str, Any]) -> None:
    """Every target's CPU per signup came from its own cgroups, with nothing lost."""
    assert set(cost["targets"]) == {"bare", "phase1", "phase3"}
    for name, target in cost["targets"].items():
        ms = target["ms_per_signup"]
        assert 0 < ms["app"] < 100, name
        assert 0 < ms["k6"] < 100, name
        assert len(target["runs"]) == cost["runs"]
    assert cost["targets"]["phase1"]["ms_per_signup"]["db"] > 0
    # The runs end when the stream is empty, so the writer's rows are in phase 3's cost.
    assert cost["targets"]["phase3"]["ms_per_signup"]["writer"] > 0
    for name in ("phase1", "phase3"):
        check = cost["targets"][name]["rows_check"]
        assert check["missing"] == 0, f"{name} lost acknowledged signups: {check}"
    assert [g["goal"] for g in cost["goals"]] == list(_cost.GOALS)
    assert all(g["measured_ms"] is not None for g in cost["goals"])


def test_cost_goals_compare_each_part_with_its_limit() -> None:
    targets = {
        "bare": {"ms_per_signup": {"app": 0.1, "k6": 0.2}},
        "phase1": {"ms_per_signup": {"app": 0.24, "db": 0.15, "k6": 0.3}},
        "phase3": {"ms_per_signup": {"app": 0.31, "writer": 0.04, "k6": 0.22}},
    }
    goals = {g["goal"]: (g["measured_ms"], g["met"]) for g in _cost.goals(targets)}
    assert goals == {
        "phase1 app": (0.24, True),
        "phase3 app": (0.31, False),
        "phase3 writer": (0.04, True),
        "k6": (0.22, True),  # k6's median over the targets
    }
    table = "\n".join(
        _cost.markdown(
            {
                "rate": 1667,
                "seconds": 10,
                "runs": 3,
                "targets": targets,
                "goals": _cost.goals(targets),
            }
        )
    )
    assert "| phase1 | app | 0.240 | +0.140 |" in table
    assert "| phase3 app | 0.25 | 0.310 | no |" in table


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

    # --quick measures phase 2 in the scale model only (its whole-machine path is phase 1's).
    assert set(results["phases"]) == {"phase1", "phase3"}
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
    _check_scale_model(results["scale_model"])
    _check_cost(results["cost"])

    table = json_file.with_suffix(".md").read_text()
    assert "QUICK SMOKE RUN" in table
    assert "| phase1 |" in table
    assert "## Scale model: each phase's wall" in table
    assert "## CPU per signup at one rate" in table
    for suffix in ("throughput", "latency", "phases", "replicas", "burst", "machine", "cost"):
        png = json_file.with_name(json_file.stem + f"-{suffix}.png")
        assert png.name in table
        assert image.imread(png).shape[0] > 100  # a real image, not an empty file

    assert _leftovers(tmp) == []
    assert list(tmp.iterdir()) == [], "the bench left its temporary folder behind"


@pytest.mark.e2e
def test_ctrl_c_stops_everything_the_bench_started(tmp_path: Path, server_tmp: Path) -> None:
    out, tmp = tmp_path / "results", server_tmp
    bench = _bench(out, tmp, "--part", "machine", "--phases", "phase1")
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
    # The run's cgroups, k6's among them, are named after the bench's pid (_targets, _steps).
    assert list(_cgroup.ROOT.glob(f"**/signup-lab/*-{bench.pid}")) == []
    assert list(_cgroup.ROOT.glob(f"**/signup-lab/k6-{bench.pid}")) == []
    assert list(tmp.iterdir()) == []
    assert not out.exists(), "an interrupted bench must not write results"
