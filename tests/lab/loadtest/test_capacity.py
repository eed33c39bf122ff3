"""The capacity search: its fine steps, and one verdict from its two passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.loadtest import _capacity


@pytest.mark.parametrize(
    ("held", "broke", "fine"),
    [
        (200, 400, [240, 280, 320, 360]),
        (800, 1600, [960, 1120, 1280, 1440]),
        (50, 100, [60, 70, 80, 90]),
        (0, 50, [10, 20, 30, 40]),  # even the first coarse step broke: look below it
        (0, 1, []),
        (1000, 1080, []),  # within 10 %: a finer step would measure noise
        (100, 120, [104, 108, 112, 116]),
        (5, 9, [6, 7, 8]),  # whole rates: two of the four round to one
    ],
)
def test_the_fine_pass_steps_evenly_between_held_and_broken(
    held: int, broke: int, fine: list[int]
) -> None:
    assert _capacity.fine_steps(held, broke) == fine


def _step(rate: int, ok: bool) -> dict[str, Any]:
    return {"rate": rate, "ok": ok}


def _pass(steps: list[dict[str, Any]], held: int, walls: list[tuple[str, int]]) -> dict[str, Any]:
    windows = [
        {"label": label, "rate": rate, "limited_by": {"service": f"{label}@{rate}"}}
        for label, rate in walls
    ]
    return {
        "lab": {
            "capacity": {"steps": steps, "sustained_rate": held},
            "wall": {"windows": windows, "limited_by": None, "problem": None},
        }
    }


def test_the_answer_is_the_highest_rate_held_and_the_wall_where_it_broke() -> None:
    coarse = _pass(
        [_step(100, True), _step(200, True), _step(400, False)],
        200,
        [
            ("held", 200),
            ("broke", 400),
        ],
    )
    fine = _pass(
        [_step(240, True), _step(280, True), _step(320, False)],
        280,
        [
            ("held", 280),
            ("broke", 320),
        ],
    )
    verdict = _capacity.combine([("coarse", coarse), ("fine", fine)])["lab"]
    assert verdict["capacity"]["sustained_rate"] == 280
    assert verdict["capacity"]["broke_at"] == 320
    assert [s["rate"] for s in verdict["capacity"]["steps"]] == [100, 200, 240, 280, 320, 400]
    assert [w["rate"] for w in verdict["wall"]["windows"]] == [280, 320]
    assert verdict["wall"]["limited_by"] == {"service": "broke@320"}


def test_a_fine_pass_that_broke_at_once_leaves_the_coarse_answer() -> None:
    coarse = _pass([_step(100, True), _step(200, False)], 100, [("held", 100), ("broke", 200)])
    fine = _pass([_step(120, False)], 0, [("broke", 120)])
    verdict = _capacity.combine([("coarse", coarse), ("fine", fine)])["lab"]
    assert verdict["capacity"]["sustained_rate"] == 100
    assert verdict["capacity"]["broke_at"] == 120
    assert [(w["label"], w["rate"]) for w in verdict["wall"]["windows"]] == [
        ("held", 100),
        ("broke", 120),
    ]


def test_the_search_says_its_answer_and_where_the_wall_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    coarse = _pass([_step(100, True), _step(200, False)], 100, [("held", 100), ("broke", 200)])
    answer = _capacity.combine([("coarse", coarse)])
    answer["lab"]["wall"]["limited_by"] = {"service": "db", "evidence": "db used 0.149 of ..."}
    assert _capacity.result(answer, Path("s.json")) == 0
    out = capsys.readouterr().out
    assert "capacity: held 100/s within the SLO; it broke at 200/s." in out
    assert "limited by db: db used 0.149 of ..." in out
