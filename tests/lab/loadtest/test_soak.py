"""The soak's parts that need no running phase: its rate and arguments, the judgement, the k6
script's options, and the report (how it measures: test_soak_sampler.py). The whole soak runs
against a real phase 3 in tests/phase3/test_soak.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab import loadtest
from lab.loadtest import _k6, _soak_report, _soak_sampler, soak
from lab.loadtest._soak_sampler import Sample
from lab.loadtest.soak import JITTER, LEVEL_WINDOWS, WARMUP_WINDOWS
from lab.state import RunState

MIB = 1 << 20
STATE = RunState("phase3", supervisor_pid=0, supervisor_created=0.0, run_id="", cgroups="")


def samples(memory: dict[str, list[int]], claims: list[int] | None = None) -> list[Sample]:
    """One sample a window; each service's private memory (MiB) per sample."""
    count = len(next(iter(memory.values())))
    return [
        Sample(
            at=float(i),
            pids={name: 100 + n for n, name in enumerate(memory)},
            rss={name: values[i] * MIB * 2 for name, values in memory.items()},
            private={name: values[i] * MIB for name, values in memory.items()},
            claims=None if claims is None else claims[i],
        )
        for i in range(count)
    ]


def flat(base: int, then: int) -> list[int]:
    """`base` MiB until the base level is taken, then `then` MiB."""
    return [base] * (WARMUP_WINDOWS + LEVEL_WINDOWS) + [then] * 5


def test_growth_past_ten_percent_fails_and_below_passes() -> None:
    verdicts = {
        v.service: v for v in soak.judge(samples({"app-1": flat(100, 112), "db": flat(100, 105)}))
    }
    assert not verdicts["app-1"].ok
    assert verdicts["app-1"].grew == 12 * MIB
    assert verdicts["db"].ok


def test_a_small_process_may_breathe_by_less_than_a_mebibyte() -> None:
    [verdict] = soak.judge(samples({"nginx-exporter": [4] * 6 + [4, 4, 4, 4, 4]}))
    assert verdict.allowed == JITTER
    bigger = samples({"nginx-exporter": [4] * 6 + [4, 4, 6, 6, 6]})
    assert not soak.judge(bigger)[0].ok


def test_one_windows_bulge_is_not_growth_but_a_raised_level_is() -> None:
    base = [10] * (WARMUP_WINDOWS + LEVEL_WINDOWS)
    [bulge] = soak.judge(samples({"app-1": [*base, 10, 10, 14, 10, 10]}))
    assert bulge.ok
    assert bulge.grew == 0
    [raised] = soak.judge(samples({"app-1": [*base, 10, 10, 10, 14, 14]}))
    assert not raised.ok
    assert raised.grew == 4 * MIB
    # Raised for three windows mid-run and back by the end: still growth past the allowance.
    [came_back] = soak.judge(samples({"app-1": [*base, 10, 14, 14, 14, 10, 10, 10]}))
    assert not came_back.ok
    assert came_back.grew == 4 * MIB


def test_redis_may_grow_by_the_claims_the_run_adds() -> None:
    claims = [0] * (WARMUP_WINDOWS + LEVEL_WINDOWS) + [1_000_000] * 5  # 20.4 MB by design
    grown = samples({"redis": flat(100, 125)}, claims)
    assert soak.judge(grown)[0].ok
    leaking = samples({"redis": flat(100, 140)}, claims)
    assert not soak.judge(leaking)[0].ok


def test_a_restarted_service_fails_and_prometheus_is_not_judged() -> None:
    run = samples({"writer-1": flat(50, 40), "prometheus": flat(100, 300)})
    run[-1].pids["writer-1"] = 999  # the supervisor restarted it
    verdicts = soak.judge(run)
    assert [v.service for v in verdicts] == ["writer-1"]
    assert not verdicts[0].ok
    assert verdicts[0].note == "restarted during the soak"


def test_a_service_restarted_during_the_warm_up_fails_too() -> None:
    run = samples({"writer-1": flat(50, 50)})
    for sample in run[2:]:
        sample.pids["writer-1"] = 999
    [verdict] = soak.judge(run)
    assert not verdict.ok
    assert verdict.note == "restarted during the soak"


def test_a_run_too_short_for_a_base_and_a_later_level_judges_nothing() -> None:
    enough = WARMUP_WINDOWS + 2 * LEVEL_WINDOWS
    assert soak.judge(samples({"app-1": [1] * (enough - 1)})) == []
    assert [v.service for v in soak.judge(samples({"app-1": [1] * enough}))] == ["app-1"]


def test_default_rate_is_seventy_percent_of_the_newest_bench(tmp_path: Path) -> None:
    def bench(name: str, started: str, rate: float) -> None:
        data = {"bench": {"started_at": started}, "phases": {"phase3": {"sustained_rate": rate}}}
        (tmp_path / name).write_text(json.dumps(data))

    bench("b-old.json", "2026-01-01T00:00:00+00:00", 2000)
    bench("a-new.json", "2026-02-01T00:00:00+00:00", 1430)
    (tmp_path / "not-a-bench.json").write_text("{}")
    assert soak.default_rate("phase3", tmp_path) == (1001, tmp_path / "a-new.json")
    with pytest.raises(soak.SoakError, match="set RATE"):
        soak.default_rate("phase2", tmp_path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RATE": "fast"}, "RATE='fast': a whole number"),
        ({"RATE": "0"}, "RATE='0': a whole number"),
        ({"RATE": "10", "DURATION": "20s"}, "DURATION=20s: at least 30s"),
        ({"RATE": "10", "DURATION": "5 m"}, "use a k6 duration like 5s or 2m"),
    ],
)
def test_bad_soak_arguments_are_refused(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(loadtest.UsageError, match=message):
        loadtest.plan("soak", {"PHASE": "phase3", **env}, results=tmp_path, state=STATE)


def test_the_plan_passes_rate_duration_and_windows_to_k6(tmp_path: Path) -> None:
    env = {
        "PHASE": "phase3",
        "RATE": "700",
        "DURATION": "3m",
        "PROMETHEUS_URL": "http://127.0.0.1:9",
    }
    p = loadtest.plan("soak", env, results=tmp_path, state=STATE)
    assert {k: p.variables[k] for k in ("RATE", "DURATION", "SOAK_WINDOWS")} == {
        "RATE": "700",
        "DURATION": "3m",
        "SOAK_WINDOWS": "30",
    }


def test_the_script_has_a_p99_threshold_per_window() -> None:
    args = [_k6.binary(), "inspect", "-e", "RATE=100", "-e", "DURATION=3m"]
    done = subprocess.run(
        [*args, str(_k6.LOADTESTS / "soak.js")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)
    (scenario,) = options["scenarios"].values()
    assert (scenario["executor"], scenario["rate"], scenario["duration"]) == (
        "constant-arrival-rate",
        100,
        "3m0s",
    )
    windows = [t for t in options["thresholds"] if t.startswith("http_req_duration{kind:valid,")]
    assert len(windows) == _soak_sampler.WINDOWS
    assert options["thresholds"]["http_req_duration{kind:valid,window:29}"] == ["p(99)<100"]
    assert "dropped_iterations" in options["thresholds"]


def test_the_report_fails_on_growth_and_draws_its_picture(tmp_path: Path) -> None:
    windows = [{"window": w, "requests": 60, "p99_ms": 20.0, "ok": True} for w in range(11)]
    k6_soak = {"rate": 1, "window_s": 6, "slo_ms": 100, "windows": windows}
    events = [{"event": "postgres CHECKPOINT", "at_s": 24, "took_s": 0.1, "outcome": "ok"}]
    report = _soak_report.build(k6_soak, samples({"app-1": flat(100, 120)}), events)
    assert report["passed"] == {"latency": True, "memory": False, "events": True}
    text = _soak_report.describe(report)
    assert "app-1" in text
    assert "GREW" in text
    summary = tmp_path / "x-soak-phase3.json"
    data, picture = _soak_report.write(summary, report)
    assert json.loads(data.read_text())["memory"][0]["ok"] is False
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_a_soak_whose_k6_recorded_no_window_fails_without_a_report(tmp_path: Path) -> None:
    summary = tmp_path / "x-soak-phase3.json"
    summary.write_text(json.dumps({"lab": {"scenario": "soak"}}))
    sampler = _soak_sampler.Sampler({}, 30.0, database_url=None, redis_url=None)
    assert _soak_report.finish(summary, sampler, 0) == _k6.THRESHOLDS_CROSSED
    assert _soak_report.finish(summary, sampler, 107) == 107
    assert not summary.with_suffix(".soak.json").exists()
