"""Targets: one that cannot run yet says why; its CPU budget leaves the observers out."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import topology
from lab.bench import _targets
from lab.topology import load


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
