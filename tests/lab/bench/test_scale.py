"""The scale model's quotas: the profile, and the compose variables each target sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.bench import _scale


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
