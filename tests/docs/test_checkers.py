"""The docs checks themselves: each finds what it is meant to find, so a pass means something."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.docs import _commands, _markdown, _results


def page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Phase 1: the monolith", "phase-1-the-monolith"),
        ("Signup: Capacity & Saturation", "signup-capacity--saturation"),
        ("SignupHighErrorRate", "signuphigherrorrate"),
        ("The SLO (thresholds)", "the-slo-thresholds"),
        ("`make bench`: what it writes", "make-bench-what-it-writes"),
        ("1,000 signups per [second](x.md)", "1000-signups-per-second"),
        ("signup_requests_total", "signup_requests_total"),
    ],
)
def test_slug_is_githubs_anchor(heading: str, anchor: str) -> None:
    assert _markdown.slug(heading) == anchor


def test_anchors_number_repeated_headings_and_skip_code(tmp_path: Path) -> None:
    path = page(tmp_path, '# Run it\n## Run it\n```sh\n# not a heading\n```\n<a id="here"></a>\n')
    assert _markdown.anchors(path) == {"run-it", "run-it-1", "here"}


def test_links_outside_code_only(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        "See [a](a.md#x) and ![plot](img/p.png).\n`[not](b.md)`\n```\n[nor](c.md)\n```\n",
    )
    assert [(t, u) for _, t, u in _markdown.links(path)] == [("a", "a.md#x"), ("plot", "img/p.png")]


def test_commands_split_env_comments_and_continuations(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        "```sh\nREPLICAS=5 make phase2   # five\nmake report \\\n  OUT=x && make down\n"
        "curl -s 'http://h/#frag'\n```\n```promql\nmake nothing\n```\n",
    )
    found = [(c.words, c.assignments) for c in _commands.commands(path)]
    assert found == [
        (["make", "phase2"], {"REPLICAS": "5"}),
        (["make", "report", "OUT=x"], {"OUT": "x"}),
        (["make", "down"], {}),
        (["curl", "-s", "http://h/#frag"], {}),
    ]


def test_target_variables_come_from_what_each_target_runs() -> None:
    assert "QUICK" in _commands.variables("bench")
    assert "OUT" not in _commands.variables("bench")
    assert {"REPLICAS", "LAB_PORT_HTTP", "RUNTIME"} <= _commands.variables("phase2")
    assert "WRITER_REPLICAS" not in _commands.variables("phase2")
    assert "WRITER_REPLICAS" in _commands.variables("phase3")
    assert {"TARGET", "MIX", "STEPS"} <= _commands.variables("load-test-target")
    assert _commands.loadtest_scenario("load-test-capacity") == "capacity"
    assert _commands.make_targets(["make", "-n", "QUICK=1"]) == ["help"]


def test_marked_table_is_read_with_its_source(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        "<!-- numbers from results/x.json -->\n\n| phase | signups/s |\n| --- | ---: |\n"
        "| [phase1](01.md) | **300** |\n\nafter\n",
    )
    (table,) = _markdown.marked_tables(path)
    assert (table.source, table.header, table.rows) == (
        "results/x.json",
        ["phase", "signups/s"],
        [["[phase1](01.md)", "**300**"]],
    )
    assert _results.plain(table.rows[0][1]) == "300"


def bench(**phase: Any) -> dict[str, Any]:
    measured = {
        "cpu_budget_cores": 2.0,
        "sustained_rate": 1250,
        "confirmed": True,
        "per_core": 625.0,
        "latency_ms": {"p50": 1.72, "p95": 6.98, "p99": 14.58},
        "error_rate": 0.0,
        "cpu_seconds_per_1k": {"app": 0.952, "db": 0.316},
        "k6_cpu_seconds_per_1k": 1.035,
        "vs_http_ceiling": 0.188,
        "vs_postgres_inserts": 0.0404,
        **phase,
    }
    ceilings = {
        "http": {**measured, "sustained_rate": 1594, "per_core": 1594.0},
        "postgres": {"insert_rows_per_s": 7422.5},
    }
    return {"bench": {"quick": False}, "ceilings": ceilings, "phases": {"phase1": measured}}


def test_bench_cells_use_the_bench_markdown_formats() -> None:
    row = _results.bench_row(bench(), "phase1")
    assert row["signups/s"] == "1,250"
    assert row["CPU budget"] == "2 cores"
    assert row["x HTTP ceiling"] == "0.19"
    assert row["p50 / p95 / p99 ms"] == "1.7 / 7.0 / 14.6"
    assert row["CPU s per 1,000 signups"] == "app 0.95, db 0.32"
    assert _results.bench_row(bench(confirmed=False), "phase1")["signups/s"] == (
        "1,250 (not confirmed)"
    )
    assert _results.bench_row(bench(), "PostgreSQL single-row inserts") == {"rate": "7,422 rows/s"}
    with pytest.raises(KeyError):
        _results.bench_row(bench(), "phase4")


def test_service_and_search_rows_are_computed_from_the_run() -> None:
    data = bench(
        services={"app": {"cpus": 1.0, "replicas": 3}},
        cpu_seconds_per_1k={"app": 0.5},
        search=[
            {
                "rate": 2000,
                "achieved": 1981.1,
                "p95_ms": 72.26,
                "p99_ms": 129.5,
                "error_rate": 0.0074,
                "dropped_share": 0.0022,
                "held": False,
            }
        ],
        runs=[],
    )
    row = _results.service_row(data, "phase1", "app")
    assert row["CPU budget (cores)"] == "3"
    assert row["signups/s at its budget"] == "6,000"
    assert row["cores at 10,000/s"] == "5.0"
    step = _results.search_row(data, "phase1", "2,000")
    assert (step["achieved/s"], step["errors"], step["SLO held"]) == ("1,981", "0.740%", "no")
    with pytest.raises(KeyError):
        _results.search_row(data, "phase1", "1,000")


def test_target_row_reads_the_k6_summary_and_the_row_count() -> None:
    summary = {
        "lab": {"phase": "phase3", "persisted": {"rows": 948926, "missing": 0}},
        "metrics": {
            "signups_acknowledged": {"values": {"count": 948926, "rate": 1581.3}},
            "dropped_iterations": {"values": {"count": 51086}},
            "http_req_duration{kind:valid}": {
                "values": {"med": 68.14, "p(95)": 549.71, "p(99)": 1015.35}
            },
        },
    }
    row = _results.target_row(summary, "phase3")
    assert row["p50 / p95 / p99 ms"] == "68.1 / 549.7 / 1,015.4"
    assert (row["acknowledged"], row["missing"]) == ("948,926", "0")
    assert row["failed requests"] == "0.00%"
    with pytest.raises(KeyError):
        _results.target_row(summary, "phase2")


def test_prose_numbers_skip_code_links_and_tables_and_find_the_rest(tmp_path: Path) -> None:
    from tests.docs import test_docs

    path = page(
        tmp_path,
        "It held 1,682/s, see [results/2026-11-23-vm.json](results/x.json).\n"
        "`STEPS=700` and http://127.0.0.1:8080 are not quotes.\n| 917 | table |\n",
    )
    assert [n for _, n in _markdown.prose_numbers(path)] == ["1,682"]
    assert "1,682" not in test_docs.settings()


def test_prose_numbers_of_one_section_stop_at_its_next_sibling(tmp_path: Path) -> None:
    path = page(tmp_path, "## A\n1,234\n## B\n5,678\n### B.1\n91.5\n## C\n4,242\n")
    assert _markdown.prose_numbers(path, "B") == [(4, "5,678"), (6, "91.5")]
    assert _markdown.prose_numbers(path, "missing") == []
