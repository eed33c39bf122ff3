"""The disturbance record: the probe beside every run, steal, and the verdict on a point."""

from __future__ import annotations

import pytest

from lab.bench import _disturbance
from lab.bench._disturbance import Probe


def test_a_run_is_read_against_the_probe_on_the_quiet_machine() -> None:
    with Probe(period=0.02) as probe:
        quiet = probe.calibrate(0.3)
        mark = probe.mark()
        run = probe.sample(0.3)  # a run's worth of readings
        record = probe.since(mark)
    assert run
    assert quiet > 0
    assert record["probe_ms"] is not None
    assert record["probe_ms"] > 0
    assert record["slowdown"] == pytest.approx(record["probe_ms"] / quiet, rel=0.01)
    assert record["steal_share"] is not None
    assert 0 <= record["steal_share"] < 1


def test_steal_is_a_share_of_all_cpu_time() -> None:
    steal, total = _disturbance.steal_ticks()
    assert 0 <= steal <= total
    assert total > 0


@pytest.mark.parametrize(
    ("slowdowns", "steals", "disturbed"),
    [
        ([1.02, 1.05, 0.98], [0.0, 0.001, 0.0], False),
        ([1.30, 1.25, 1.02], [0.0, 0.0, 0.0], True),  # the median ran 25 % slower
        ([1.0, 1.0, 1.0], [0.08, 0.06, 0.0], True),  # a hypervisor took 6 % of the time
        ([1.30, 1.0, 1.0], [0.0, 0.0, 0.0], False),  # one slow run of three is not the point's
    ],
)
def test_a_point_is_disturbed_by_its_runs_medians(
    slowdowns: list[float], steals: list[float], disturbed: bool
) -> None:
    records: list[dict[str, float | None]] = [
        {"probe_ms": 2.0, "slowdown": s, "steal_share": t}
        for s, t in zip(slowdowns, steals, strict=True)
    ]
    verdict = _disturbance.verdict(records)
    assert verdict["disturbed"] is disturbed
    assert verdict["slowdown"] == sorted(slowdowns)[1]


def test_a_point_without_a_record_is_not_called_disturbed() -> None:
    """Runs from before the probe existed: nothing known, nothing claimed."""
    assert _disturbance.verdict([]) == {"slowdown": None, "steal_share": None, "disturbed": False}
