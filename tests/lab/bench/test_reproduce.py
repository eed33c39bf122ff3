"""A run against the last committed run of its part: which walls moved, and the probe then
and now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.bench import _reproduce


def _run(
    started: str,
    rates: dict[int, int],
    probe: float | None,
    unconfirmed: tuple[int, ...] = (),
    **bench: Any,
) -> dict[str, Any]:
    points = [
        {"replicas": n, "sustained_rate": r, "confirmed": n not in unconfirmed}
        for n, r in rates.items()
    ]
    return {
        "bench": {"part": "cluster", "quick": False, "started_at": started, **bench},
        "scale_model": {
            "machine_quiet": {"probe_ms": probe} if probe else None,
            "cluster": {"quotas": {"REDIS_CPUS": "0.04"}, "phases": {"phase4": points}},
        },
    }


def _write(folder: Path, name: str, results: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(results))


def test_the_newest_earlier_run_of_the_part_is_the_one_compared(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _run("2026-12-06T10:00:00+00:00", {1: 100, 2: 200}, 0.6))
    _write(tmp_path, "b.json", _run("2026-12-06T12:00:00+00:00", {1: 110, 2: 300}, 0.5))
    _write(tmp_path, "quick.json", _run("2026-12-06T13:00:00+00:00", {1: 1}, 0.5, quick=True))
    other = _run("2026-12-06T13:30:00+00:00", {1: 1}, 0.5)
    other["bench"]["part"] = "scale"  # a run of another part is never the one compared
    _write(tmp_path, "scale.json", other)
    later = _run("2026-12-06T20:00:00+00:00", {1: 1, 2: 1}, 0.5)
    _write(tmp_path, "later.json", later)
    now = _run("2026-12-06T14:00:00+00:00", {1: 105, 2: 210, 3: 400}, 0.9)

    found = _reproduce.compare(now, tmp_path)
    assert found is not None
    assert found["previous"] == "b.json"
    assert found["probe_ms"] == {"then": 0.5, "now": 0.9}
    ratios = {r["point"]: r["ratio"] for r in found["points"]}
    assert ratios == {"phase4 x1 at redis 0.04": 0.955, "phase4 x2 at redis 0.04": 0.7}
    assert found["within"] is False
    text = "\n".join(_reproduce.markdown(found))
    assert "1 of 2 points did not reproduce (1 moved more than 15%, 0 not confirmed" in text
    assert "(1.80x)" in text


def test_a_first_run_says_it_has_nothing_to_compare_with(tmp_path: Path) -> None:
    now = _run("2026-12-06T14:00:00+00:00", {1: 105}, 0.9)
    found = _reproduce.compare(now, tmp_path)
    assert found == {"previous": None}
    assert "No earlier full run" in "\n".join(_reproduce.markdown(found))


def test_a_run_without_a_part_is_a_whole_run_and_the_file_written_is_never_compared(
    tmp_path: Path,
) -> None:
    """Runs from before parts were recorded are whole runs (`make bench`); the file a run is
    written to (itself, when written again) is never "the previous run"."""
    whole = _run("2026-11-29T10:00:00+00:00", {1: 100}, None)
    del whole["bench"]["part"]
    _write(tmp_path, "2026-11-29-vm.json", whole)
    _write(
        tmp_path, "2026-12-06-vm.json", _run("2026-12-06T09:00:00+00:00", {1: 90}, 0.6, part="all")
    )
    now = _run("2026-12-06T14:00:00+00:00", {2: 300}, 0.6, part="all")
    found = _reproduce.compare(now, tmp_path, skip="2026-12-06-vm.json")
    assert found is not None
    assert found["previous"] == "2026-11-29-vm.json"
    assert found["points"] == []
    assert found["within"] is None
    text = "\n".join(_reproduce.markdown(found))
    assert "no point measured in both runs" in text
    assert "| point |" not in text  # no table without a row


def test_a_wall_that_did_not_hold_in_one_run_did_not_reproduce(tmp_path: Path) -> None:
    """290/s held at three replicas one run, 264/s did not the next: close rates, but no wall
    to agree on. Nor is there one where a run held no rate at all."""
    _write(tmp_path, "then.json", _run("2026-12-07T01:26:00+00:00", {1: 150, 3: 290}, 0.63))
    now = _run("2026-12-07T04:20:00+00:00", {1: 153, 3: 264, 4: 352}, 0.63, unconfirmed=(3, 4))
    found = _reproduce.compare(now, tmp_path)
    assert found is not None
    assert [(r["point"], r["unconfirmed"]) for r in found["points"]] == [
        ("phase4 x1 at redis 0.04", []),
        ("phase4 x3 at redis 0.04", ["now"]),
    ]
    assert found["within"] is False
    text = "\n".join(_reproduce.markdown(found))
    assert "1 of 2 points did not reproduce (0 moved more than 15%, 1 not confirmed" in text
    assert "| phase4 x3 at redis 0.04 | 290 | 264 (not confirmed) | 0.91 |" in text

    nothing = _run("2026-12-07T05:00:00+00:00", {1: 150, 3: 0}, 0.63, unconfirmed=(3,))
    found = _reproduce.compare(nothing, tmp_path)
    assert found is not None
    assert found["points"][1]["ratio"] is None
    assert found["within"] is False
    assert "| phase4 x3 at redis 0.04 | 290 | 0 (not confirmed) | - |" in "\n".join(
        _reproduce.markdown(found)
    )
