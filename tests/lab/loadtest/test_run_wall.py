"""A load test's wall: the CPU readings cut at the summary's steps and judged."""

from __future__ import annotations

from typing import Any

import pytest

from lab.loadtest import _run_wall
from lab.loadtest._walls import Counters

T0 = 1_800_000_000.0  # readings' Unix clock


def _counters(app_cpu: float, app_throttled: float, at: float | None = None) -> Counters:
    return Counters(
        cpu_seconds={"app": app_cpu, "db": app_cpu / 4},
        periods={"app": app_cpu * 100, "db": app_cpu * 100},
        throttled_periods={"app": app_throttled, "db": 0.0},
        throttled_seconds={"app": app_throttled / 100, "db": 0.0},
        quota_cores={"app": 0.1, "db": 0.15},
        at=at,
    )


def _sampler(readings: list[_run_wall.Reading]) -> _run_wall.WallSampler:
    sampler = _run_wall.WallSampler("http://127.0.0.1:1")
    sampler.readings = readings
    return sampler


def _steady(seconds: int, app_cores: float, throttled_per_s: float) -> list[_run_wall.Reading]:
    """A reading a second: the app at `app_cores`, the machine at three times that, k6 at a
    quarter of it."""
    return [
        _run_wall.Reading(
            T0 + t,
            _counters(app_cores * t, throttled_per_s * t),
            busy_s=3 * app_cores * t,
            k6_s=app_cores / 4 * t,
        )
        for t in range(seconds + 1)
    ]


def test_a_window_judges_the_cores_each_service_used_against_its_quota() -> None:
    sampler = _sampler(_steady(10, app_cores=0.095, throttled_per_s=8.0))
    window = sampler.window(T0 + 2, T0 + 8)
    assert window is not None
    assert window["seconds"] == pytest.approx(6.0)
    app = window["services"]["app"]
    assert app["cores"] == pytest.approx(0.095)
    assert app["used"] == pytest.approx(0.95)
    assert window["machine_cores"] == pytest.approx(0.285)
    assert window["k6_cores"] == pytest.approx(0.024, abs=0.001)
    assert window["limited_by"]["service"] == "app"
    assert "app used 0.095 of its 0.1 cores (95%)" in window["limited_by"]["evidence"]


def test_a_window_uses_the_exporters_clock_when_it_stamps_its_counters() -> None:
    # cAdvisor serves what it read at its last housekeeping: 4 s of CPU counted over 8 s of
    # its clock is half a core, though the readings were 6 s apart.
    readings = [
        _run_wall.Reading(T0, _counters(10.0, 0.0, at=T0 - 3), busy_s=0.0, k6_s=None),
        _run_wall.Reading(T0 + 6, _counters(14.0, 0.0, at=T0 + 5), busy_s=6.0, k6_s=None),
    ]
    window = _sampler(readings).window(T0, T0 + 6)
    assert window is not None
    assert window["services"]["app"]["cores"] == pytest.approx(0.5)
    assert window["k6_cores"] is None


def test_too_few_readings_is_no_window() -> None:
    assert _sampler(_steady(10, 0.05, 0.0)).window(T0 + 20, T0 + 30) is None


def _capacity_summary(steps: list[dict[str, Any]], held: int) -> dict[str, Any]:
    return {
        "setup_data": {"startedAt": T0 * 1000},
        "lab": {"capacity": {"steps": steps, "sustained_rate": held}},
    }


def test_capacity_windows_are_the_last_step_that_held_and_the_one_that_broke() -> None:
    steps: list[dict[str, Any]] = [
        {"rate": 50, "from_s": 5, "ran_s": 30, "ok": True},
        {"rate": 100, "from_s": 40, "ran_s": 30, "ok": True},
        {"rate": 200, "from_s": 75, "ran_s": 12.5, "ok": False},
    ]
    windows = _run_wall.capacity_windows(_capacity_summary(steps, held=100), T0 + 88)
    # The step that broke from the end of the one before: its ramp is load near its rate.
    assert windows == [("held", 100, T0 + 40, T0 + 70), ("broke", 200, T0 + 70, T0 + 87.5)]


def test_a_step_broken_in_its_ramp_is_judged_from_its_ramp_until_k6_stopped() -> None:
    steps: list[dict[str, Any]] = [
        {"rate": 50, "from_s": 5, "ran_s": 30, "ok": True},
        {"rate": 100, "from_s": 40, "ran_s": 0, "ok": False},
    ]
    assert _run_wall.capacity_windows(_capacity_summary(steps, held=50), T0 + 38.5) == [
        ("held", 50, T0 + 5, T0 + 35),
        ("broke", 100, T0 + 35, T0 + 38.5),
    ]


def test_without_setup_data_there_is_nothing_to_cut() -> None:
    assert _run_wall.capacity_windows({"lab": {"capacity": {"steps": []}}}, T0) == []
    assert _run_wall.run_window({}, T0) is None


def test_the_report_names_the_wall_of_the_step_that_broke() -> None:
    readings = _steady(10, 0.06, 0.0) + [
        _run_wall.Reading(T0 + 10 + t, _counters(0.6 + 0.099 * t, 9.0 * t), 3.0 + 0.3 * t, 0.3)
        for t in range(1, 6)
    ]
    sampler = _sampler(readings)
    wall = _run_wall.report(
        sampler, [("held", 100, T0 + 2, T0 + 9), ("broke", 200, T0 + 11, T0 + 15)]
    )
    assert [w["label"] for w in wall["windows"]] == ["held", "broke"]
    assert wall["limited_by"]["service"] == "app"
    text = _run_wall.describe(wall, broke=True)
    assert "held 100/s over 7 s: app 0.06 of 0.1 (60%)" in text
    assert "broke 200/s over 4 s: app 0.10 of 0.1 (99%, throttled 91%)" in text
    assert "CPU per signup at 100/s: app 0.600 ms, db 0.150 ms" in text
    assert text.splitlines()[-1].startswith("limited by app: app used 0.099 of its 0.1 cores")


def test_a_broken_run_with_no_service_at_its_quota_says_the_wall_is_not_cpu() -> None:
    wall = _run_wall.report(_sampler(_steady(10, 0.03, 0.0)), [("run", None, T0, T0 + 10)])
    assert wall["limited_by"]["service"] is None
    last = _run_wall.describe(wall, broke=True).splitlines()[-1]
    assert last.startswith("limited by no CPU: no service at its quota and the machine not full")
    assert "(busiest: app at 30%, db at 5%)" in last
    assert _run_wall.describe(wall, broke=False).splitlines()[-1].startswith("no wall reached:")


def test_a_dead_counters_endpoint_is_said_once_and_the_machine_still_judged() -> None:
    sampler = _run_wall.WallSampler("http://127.0.0.1:9", interval=0.05)
    sampler.start(None)
    sampler.stop()
    assert sampler.problem is not None
    assert sampler.problem.startswith("no per-service CPU figures: http://127.0.0.1:9")
    assert all(r.counters is None for r in sampler.readings)
