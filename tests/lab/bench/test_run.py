"""A real `--quick` run of the whole bench (`python -m lab.bench`), so it never rots; and Ctrl-C
stops everything it started.

The quick run's numbers are noise by design (seconds per step on a shared machine), so the
assertions are on structure and sanity only: ratios inside sane bounds, percentiles in order,
every acknowledged signup a row. Never on how fast anything was.
"""

from __future__ import annotations

import json
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

from lab.bench import _cost, _scale, run
from lab.native import _cgroup
from tests.conftest import child_env


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
    profile = _scale.profile()
    redis = profile.pop(_scale.CLUSTER_QUOTA)
    assert scale["quotas"] == profile
    assert scale["machine_quiet"]["probe_ms"] > 0
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
    cluster = scale["cluster"]
    assert cluster["quotas"] == {"REDIS_CPUS": redis}
    for phase, points in cluster["phases"].items():
        if phase != "phase4-grown":
            assert [p["replicas"] for p in points] == list(range(1, len(points) + 1)), phase
        for point in points:
            assert point["sustained_rate"] > 0, (phase, point)
            assert point["rows_check"]["missing"] == 0, (phase, point["rows_check"])
    # Each Redis node is its own line where the wall is judged, under the comparison's quota;
    # CPU per signup counts the whole cluster.
    node = cluster["phases"]["phase4"][0]
    assert node["evidence_step"]["load"]["redis-node-1"]["quota_cores"] == float(redis)
    assert node["cpu_ms_per_signup"]["redis-node"] > 0
    # Every node read at no load too (what sharding cannot divide); the scale part's are not.
    assert node["idle_seconds"] == 2
    assert {f"redis-node-{n}" for n in range(1, 7)} <= node["idle_cores"].keys()
    assert all(0 <= cores < 1 for cores in node["idle_cores"].values())
    assert scale["phases"]["phase3"][0]["idle_cores"] == {}
    # Grown: phase 4 again at the replicas of its best point, with eight nodes, nothing lost.
    confirmed = [p for p in cluster["phases"]["phase4"] if p["confirmed"]]
    grown = cluster["phases"]["phase4-grown"]
    if confirmed:
        best = max(confirmed, key=lambda p: p["sustained_rate"])
        assert [p["replicas"] for p in grown] == [best["replicas"]]
        assert "redis-node-8" in grown[0]["evidence_step"]["load"]
    else:
        assert grown == []
    for phase, points in [*scale["phases"].items(), *cluster["phases"].items()]:
        for point in points:
            machine = point["machine"]
            assert machine["slowdown"] > 0, (phase, machine)
            assert 0 <= machine["steal_share"] < 1
            assert isinstance(machine["disturbed"], bool)
    assert len(scale["goals"]) == 8


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
    assert "### Past one Redis: phase 3 and phase 4" in table
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


def test_a_second_full_run_of_a_part_the_same_day_keeps_the_first(tmp_path: Path) -> None:
    """Two runs hours apart are how a wall is shown to reproduce: the later one must not
    overwrite the earlier, whose file it is compared with."""
    first = {"host": "vm", "date": "2026-12-07", "part": "cluster", "quick": False}
    first["started_at"] = "2026-12-07T01:26:38+00:00"
    assert run.results_stem(first, tmp_path) == "2026-12-07-vm-cluster"
    (tmp_path / "2026-12-07-vm-cluster.json").write_text(json.dumps({"bench": first}))
    # The same run written again (a replot) keeps its name.
    assert run.results_stem(first, tmp_path) == "2026-12-07-vm-cluster"
    later = {**first, "started_at": "2026-12-07T04:31:02+00:00"}
    assert run.results_stem(later, tmp_path) == "2026-12-07-vm-cluster-0431"
    # A quick run is a smoke test: the day's quick run is replaced.
    quick = {**later, "quick": True}
    (tmp_path / "2026-12-07-vm-cluster-quick.json").write_text(json.dumps({"bench": first}))
    assert run.results_stem(quick, tmp_path) == "2026-12-07-vm-cluster-quick"
    whole = {**later, "part": "all", "host": "my host"}
    assert run.results_stem(whole, tmp_path) == "2026-12-07-my-host"
    # A file of that name the bench cannot read is kept too.
    (tmp_path / "2026-12-07-my-host.json").write_text("<<<<<<< HEAD\n")
    assert run.results_stem(whole, tmp_path) == "2026-12-07-my-host-0431"
