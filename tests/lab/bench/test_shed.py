"""The shedding part's verdicts and table, on data in the shapes k6 writes: no stack, no k6."""

from __future__ import annotations

from pathlib import Path

from lab.bench import _shed


def step(rate: int, errors: float, ok: bool = True) -> dict[str, object]:
    return {
        "rate": rate,
        "requests": rate * 20,
        "achieved": 1.0,
        "p95_ms": 12.0,
        "error_rate": errors,
        "ok": ok,
    }


def test_a_step_broken_in_the_ramp_reads_as_such() -> None:
    ramp = {"rate": 1400, "requests": 0, "p95_ms": None, "error_rate": None, "ok": False}
    assert _shed._step({**ramp, "stopped": "in the ramp up to it"}) == (
        "1400: broken in the ramp up to it"
    )
    cut = {**step(1200, 0.03, ok=False), "stopped": "cut short after 9 of 20 s"}
    assert _shed._step(cut) == "1200: 12 ms, 3.00 % (broken, cut short after 9 of 20 s)"


def test_the_rate_held_is_the_last_before_the_first_break() -> None:
    verdict = {"steps": [step(800, 0), step(1000, 0), step(1200, 0, ok=False), step(1400, 0)]}
    assert _shed.held(verdict) == 1000, "1,400 holding after 1,200 broke is noise"
    assert _shed.held({"steps": [step(800, 0.2, ok=False)]}) == 0


def test_a_rate_held_with_a_503_below_it_is_not_clean() -> None:
    clean = {"steps": [step(800, 0), step(1000, 0), step(1200, 0.2, False)]}
    assert _shed.held_without_503(clean)
    dirty = {"steps": [step(800, 0.0005), step(1000, 0)]}
    assert not _shed.held_without_503(dirty), "an error under the SLO's 0.1 % still counts"


def test_the_overload_verdict_splits_by_status_and_finds_the_last_late_503() -> None:
    over = [
        (100.0, "over", "503", 3.0),
        (100.5, "over", "201", 40.0),
        (101.0, "over", "503", 5.0),
        (102.0, "over", "201", 60.0),
    ]
    # The first `after` request was sent at 102.2 (answered at 102.25 after 50 ms).
    after = [
        (102.25, "after", "201", 50.0),
        (102.5, "after", "503", 2.0),
        (103.5, "after", "503", 2.0),
        (105.0, "after", "201", 8.0),
    ]
    verdict = _shed.overload_verdict(over + after)
    assert verdict["overload"] == {
        "201": {"count": 2, "p95_ms": 60.0},
        "503": {"count": 2, "p95_ms": 5.0},
    }
    assert verdict["after"] == {"201": 2, "503": 2}
    assert verdict["last_503_after_s"] == 1.3
    assert verdict["span"] == [99.997, 102.2]
    assert _shed.overload_verdict(over + after[3:])["last_503_after_s"] is None


def test_answers_reads_only_the_signups_durations_with_their_scenario(tmp_path: Path) -> None:
    out = tmp_path / "k6.csv"
    out.write_text(
        "metric_name,timestamp,metric_value,name,scenario,status\n"
        "http_req_duration,1700000000250,12.5,POST /signup,over,201\n"
        "http_req_duration,1700000000300,1.0,GET /healthz,over,200\n"
        "http_reqs,1700000000400,1,POST /signup,over,201\n"
        "http_req_duration,1700000001500,3.25,POST /signup,after,503\n"
    )
    assert _shed.answers(out) == [
        (1700000000.25, "over", "201", 12.5),
        (1700000001.5, "after", "503", 3.25),
    ]


def test_the_table_shows_every_run_and_the_medians() -> None:
    result = {
        "steps": "800,1000",
        "capacity": [
            {"config": "by wait", "run": 1, "steps": [step(800, 0), step(1000, 0)]},
            {"config": "no limit", "run": 1, "steps": [step(800, 0), step(1000, 0.2, False)]},
        ],
        "median_held": {"by wait": 1000, "no limit": 800},
        "overload": [
            {
                "config": "by wait",
                "rate": 1600,
                "overload": {"503": {"count": 9, "p95_ms": 4.0}},
                "last_503_after_s": None,
                "served_p95_in_app_ms": 48.2,
                "wall": {"limited_by": {"service": "app", "evidence": "app used 0.990 of ..."}},
            }
        ],
    }
    text = _shed.markdown(result, "title")
    assert "| by wait | 1 | 1000 | yes | 800: 12 ms, 0.00 %; 1000: 12 ms, 0.00 % |" in text
    assert "Median held: by wait: 1000/s, no limit: 800/s." in text
    assert "| by wait | 1600 | 9 | 4.0 | 0 | None | 48.2 | none | app used 0.990 of ... |" in text
