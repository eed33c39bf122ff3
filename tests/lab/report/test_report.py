"""`python -m lab.report`: which time range it draws, and its one-line failures.

Drawing every panel from a real Prometheus after a real load test is tested with the live
phase 1 run in tests/monitoring/test_panels_live.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab import report
from lab._proc import free_port
from lab.report import _units

NOW = 1_800_000_000.0


def meta(folder: Path, name: str, started: float, ended: float, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.meta.json"
    fields = {
        "scenario": "smoke",
        "phase": "phase2",
        "base_url": "http://127.0.0.1:8080",
        "started_at": started,
        "ended_at": ended,
        "test_id": name,
        **extra,
    }
    path.write_text(json.dumps(fields))
    return path


def args(results: Path, **values: str | None) -> argparse.Namespace:
    base: dict[str, object] = {"start": None, "end": None, "phase": None, "results_dir": results}
    return argparse.Namespace(**{**base, **values})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("now", NOW),
        ("now-15m", NOW - 900),
        ("now-2h", NOW - 7200),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
        ("2027-01-15T08:00:00", 1_800_000_000.0),  # no zone: UTC, as the report prints
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert report.parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["yesterday", "now+5m", "now-5x", "2027-13-01", ""])
def test_parse_time_rejects_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(ValueError, match="unix seconds, ISO 8601"):
        report.parse_time(bad, NOW)


def test_default_range_is_the_newest_load_test_padded(tmp_path: Path) -> None:
    meta(tmp_path, "old", NOW - 4000, NOW - 3900)
    meta(tmp_path, "new", NOW - 600, NOW - 500, phase="phase3")
    window = report.choose_window(args(tmp_path), NOW)
    assert (window.start, window.end) == (NOW - 600 - report.PAD, NOW - 500 + report.PAD)
    assert window.phase == "phase3"
    assert "load test new" in window.source
    assert window.name == "report-new"


def test_broken_meta_files_are_skipped_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta(tmp_path, "good", NOW - 600, NOW - 500)
    meta(tmp_path, "backwards", NOW - 100, NOW - 200)
    (tmp_path / "garbage.meta.json").write_text("{not json")
    (tmp_path / "partial.meta.json").write_text(json.dumps({"phase": "phase1"}))
    found = report.last_run(tmp_path)
    assert found is not None
    assert found[0]["test_id"] == "good"
    err = capsys.readouterr().err
    assert "backwards.meta.json: ended_at is before started_at" in err
    assert "garbage.meta.json" in err
    assert "partial.meta.json: missing scenario, started_at, ended_at, test_id" in err


def test_without_a_load_test_the_range_is_the_last_15_minutes_of_all_phases(
    tmp_path: Path,
) -> None:
    window = report.choose_window(args(tmp_path / "none"), NOW)
    assert (window.start, window.end, window.phase) == (NOW - 900, NOW, ".*")


def test_explicit_range_and_phase_win(tmp_path: Path) -> None:
    meta(tmp_path, "run", NOW - 600, NOW - 500)
    window = report.choose_window(args(tmp_path, start="now-1h", end="now-30m", phase="all"), NOW)
    assert (window.start, window.end, window.phase) == (NOW - 3600, NOW - 1800, ".*")
    with pytest.raises(ValueError, match="empty"):
        report.choose_window(args(tmp_path, start="now", end="now-1h"), NOW)
    with pytest.raises(ValueError, match="31 days"):
        report.choose_window(args(tmp_path, start="now-40d"), NOW)


def run_report(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.report", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_unreachable_prometheus_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = run_report(
        "--prometheus", f"http://127.0.0.1:{port}", "--results-dir", str(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"Prometheus at http://127.0.0.1:{port} is not reachable" in lines[0]
    assert "make phase1" in lines[0]
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "yesterday"], "unix seconds, ISO 8601"),
        (["--phase", "phase9"], "invalid choice"),
        (["--from", "now", "--to", "now-1h"], "empty"),
    ],
)
def test_bad_arguments_fail_before_any_query(argv: list[str], message: str, tmp_path: Path) -> None:
    done = run_report(*argv, "--results-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "shown"),
    [
        (0.0123, "s", None, "12.3 ms"),
        (1.5, "s", None, "1.50 s"),
        (0.0, "s", None, "0 s"),
        (91.43, "percent", 1, "91.4%"),
        (3 * 2**20, "bytes", None, "3.0 MiB"),
        (2048.0, "Bps", None, "2.0 KiB/s"),
        (4.5, "reqps", 1, "4.5 req/s"),
        (12_500.0, "reqpm", None, "12.5k req/min"),
        (3.0, "short", 0, "3"),
        (float("nan"), "percent", None, "NaN"),
        (float("inf"), "short", None, "+Inf"),
    ],
)
def test_values_read_as_grafana_shows_them(
    value: float, unit: str, decimals: int | None, shown: str
) -> None:
    assert _units.fmt(value, unit, decimals) == shown


def test_threshold_colour_takes_the_highest_step_reached() -> None:
    steps: list[dict[str, Any]] = [
        {"color": "red", "value": None},
        {"color": "yellow", "value": 90},
        {"color": "green", "value": 95},
    ]
    assert _units.threshold_colour(89.9, steps) == _units.COLOURS["red"]
    assert _units.threshold_colour(90, steps) == _units.COLOURS["yellow"]
    assert _units.threshold_colour(99, steps) == _units.COLOURS["green"]
    assert _units.threshold_colour(float("nan"), steps) == _units.COLOURS["red"]
