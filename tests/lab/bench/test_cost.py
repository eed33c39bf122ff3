"""The cost part's goals and table, from known numbers."""

from __future__ import annotations

from lab.bench import _cost


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
