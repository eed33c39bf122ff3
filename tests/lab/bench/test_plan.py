"""The search for the highest rate that holds: where it starts, climbs, bisects and stops."""

from __future__ import annotations

from lab.bench import _plan


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
