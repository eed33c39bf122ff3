"""The soak's parts that need no running phase: its rate and arguments, how memory is read from
real processes, the judgement, the k6 script's options, and the report. The whole soak runs
against a real phase 3 in tests/phase3/test_soak.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import _k6, _soak_report, loadtest, soak
from lab.soak import JITTER, WARMUP_WINDOWS, Reading, Sample
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
    """`base` MiB until the warm-up ends, then `then` MiB."""
    return [base] * (WARMUP_WINDOWS + 1) + [then] * 5


def test_growth_past_ten_percent_fails_and_below_passes() -> None:
    verdicts = {
        v.service: v for v in soak.judge(samples({"app-1": flat(100, 112), "db": flat(100, 105)}))
    }
    assert not verdicts["app-1"].ok
    assert verdicts["app-1"].worst == 12 * MIB
    assert verdicts["db"].ok


def test_a_small_process_may_breathe_by_less_than_a_mebibyte() -> None:
    [verdict] = soak.judge(samples({"nginx-exporter": [4] * 6 + [4, 4, 4, 4, 4]}))
    assert verdict.allowed == JITTER
    bigger = samples({"nginx-exporter": [4] * 6 + [4, 4, 6, 6, 6]})
    assert not soak.judge(bigger)[0].ok


def test_redis_may_grow_by_the_claims_the_run_adds() -> None:
    claims = [0] * (WARMUP_WINDOWS + 1) + [1_000_000] * 5  # 21 MB of claims by design
    grown = samples({"redis": flat(100, 125)}, claims)
    assert soak.judge(grown)[0].ok
    leaking = samples({"redis": flat(100, 140)}, claims)
    assert not soak.judge(leaking)[0].ok


def breathing(level_mib: float) -> list[Reading]:
    """A garbage-collected process's readings over one window: mostly `level_mib`, with a
    collection's crest of 3 MiB above it caught in a quarter of them."""
    crest = [0, 0, 3, 0] * (soak.READINGS // 4)
    return [
        Reading(
            pids={"go-exporter": 7},
            rss={"go-exporter": int((level_mib + c) * MIB)},
            private={"go-exporter": int((level_mib + c) * MIB)},
        )
        for c in crest
    ]


def test_a_window_is_the_median_of_its_readings() -> None:
    readings = breathing(6)
    readings[-1].pids["go-exporter"] = 8  # restarted just before the window closed
    sample = soak.window_sample(60.0, readings, claims=5)
    assert sample.private == {"go-exporter": 6 * MIB}
    assert sample.rss == {"go-exporter": 6 * MIB}
    assert sample.pids == {"go-exporter": 8}
    assert (sample.at, sample.claims) == (60.0, 5)


def test_a_breathing_process_passes_and_a_rising_one_fails() -> None:
    def run(levels: list[float]) -> list[Sample]:
        return [soak.window_sample(float(i), breathing(v), None) for i, v in enumerate(levels)]

    steady = [6.0] * (WARMUP_WINDOWS + 1) + [6.0] * 24
    [verdict] = soak.judge(run(steady))
    assert verdict.ok
    assert verdict.worst == 0
    # Its crests are 50 % above its level: one reading a window would have failed it.
    rising = [6.0] * (WARMUP_WINDOWS + 1) + [6 + 0.1 * w for w in range(1, 25)]
    [verdict] = soak.judge(run(rising))
    assert not verdict.ok
    assert verdict.worst == int(8.4 * MIB) - 6 * MIB


def test_a_restarted_service_fails_and_prometheus_is_not_judged() -> None:
    run = samples({"writer-1": flat(50, 40), "prometheus": flat(100, 300)})
    run[-1].pids["writer-1"] = 999  # the supervisor restarted it
    verdicts = soak.judge(run)
    assert [v.service for v in verdicts] == ["writer-1"]
    assert not verdicts[0].ok
    assert verdicts[0].note == "restarted during the soak"


def test_a_run_too_short_for_a_warm_up_judges_nothing() -> None:
    assert soak.judge(samples({"app-1": [1] * WARMUP_WINDOWS})) == []


FORKED = """
import os, signal, sys, time
block = bytes(range(256)) * (64 * 1024 * 1024 // 256)  # 64 MiB, every page written
if os.fork() == 0:
    time.sleep(120)
    sys.exit(0)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def forked() -> Iterator[int]:
    """A process holding 64 MiB, forked once: both see the same pages until one writes."""
    with subprocess.Popen(
        [sys.executable, "-c", FORKED], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            yield process.pid
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_memory_of_a_forked_process_counts_shared_pages_once(forked: int) -> None:
    rss, private = soak.memory_of(forked)
    # RSS counts the 64 MiB in both processes; their proportional anonymous share, once.
    assert rss > 120 * MIB
    assert 60 * MIB < private < 90 * MIB


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
    assert len(windows) == soak.WINDOWS
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


def test_the_sampler_samples_every_window_and_reports_a_failed_event() -> None:
    # 3 s: WINDOWS windows of READINGS readings each, as the full run's half hour has.
    sampler = soak.Sampler({"this": os.getpid()}, 3.0, database_url=None, redis_url=None)
    sampler.start()
    sampler._thread.join(timeout=30)  # a 3-second run ends by itself
    assert len(sampler.samples) == soak.WINDOWS + 1
    assert [s.at for s in sampler.samples] == sorted(s.at for s in sampler.samples)
    assert all(s.private["this"] > 0 and s.rss["this"] > 0 for s in sampler.samples)
    # No database to checkpoint and no Redis: the one event tried is reported as failed.
    [event] = sampler.events
    assert event["event"] == "postgres CHECKPOINT"
    assert event["outcome"].startswith("failed")
