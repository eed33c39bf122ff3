"""The report's panel pictures: which lines are drawn."""

from __future__ import annotations

import math

from lab.report._plot import FAINT, faint
from lab.report._series import Line


def _line(name: str, values: list[float], right: bool = False) -> Line:
    props = {"custom.axisPlacement": "right"} if right else {}
    return Line(name, [float(t) for t in range(len(values))], values, "#000000", props)


def test_a_line_flat_at_zero_beside_a_busy_one_is_left_out_and_named() -> None:
    app = _line("app", [0.1, 0.4, 0.36])
    exporter = _line("exporter", [0.001, 0.002, math.nan])
    db = _line("db", [0.05, 0.2, 0.19])
    at_the_edge = _line("edge", [FAINT * 0.4])  # exactly the share: still drawn
    assert faint([app, exporter, db, at_the_edge]) == [exporter]


def test_all_zero_is_the_answer_and_the_right_axis_is_judged_apart() -> None:
    no_errors = [_line("500", [0.0, 0.0]), _line("503", [0.0, math.nan])]
    assert faint(no_errors) == []
    # A series on its own (right) axis has its own scale: never compared with the left.
    assert faint([_line("rate", [500.0]), _line("backlog", [1.0], right=True)]) == []
