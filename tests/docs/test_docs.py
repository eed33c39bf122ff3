"""The docs keep their promises: links resolve, commands exist, numbers match their source.

- every relative link and `#anchor` of the README, docs/ and the phase, monitoring and load
  test READMEs points at a file (and a heading GitHub renders with that anchor);
- every `make` command in a shell code block names a target that `make -n` accepts, with
  only variables that target reads; every `python -m` command names a module that exists
  and options its `--help` lists;
- every alert's `runbook` annotation lands on a section of docs/metrics.md;
- every table marked `<!-- numbers from results/FILE.json -->` says what that committed
  file says, cell by cell, and the README's latest results are copied from a bench table.

No server is started: this reads files and runs `make -n` and `--help`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from lab import loadtest
from lab.report import dashboards
from lab.topology import REPO
from tests.docs import _commands, _markdown, _results

DOCS = REPO / "docs"
TUTORIAL = ("README.md", "01-monolith.md", "02-replicas.md", "03-queue.md", "04-cluster.md")
OWN_PAGES = (*TUTORIAL, "metrics.md", "results.md", "beyond-one-machine.md")
PAGES = sorted(
    {
        REPO / "README.md",
        *DOCS.glob("**/*.md"),
        *(
            REPO / folder / "README.md"
            for folder in (
                "phase1-monolith",
                "phase2-replicas",
                "phase3-queue",
                "phase4-cluster",
                "monitoring",
                "loadtests",
            )
        ),
    }
)
# How the pages name a panel: `[Capacity & Saturation \u203a Pool Wait](metrics.md#...)`.
PANEL = " \u203a "
RULE_FILES = sorted((REPO / "monitoring" / "prometheus" / "rules").glob("*.yml"))


def name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


@cache
def anchors(page: Path) -> set[str]:
    return _markdown.anchors(page)


def test_the_tutorial_pages_exist() -> None:
    missing = [p for p in OWN_PAGES if not (DOCS / p).is_file()]
    assert not missing, f"docs/ lacks {missing}"


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_links_resolve(page: Path) -> None:
    broken = []
    for line, _text, target in _markdown.links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto: leave the repository
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{name(page)}:{line}: {target}: no such file")
        elif not dest.is_relative_to(REPO):
            broken.append(f"{name(page)}:{line}: {target}: outside the repository")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{name(page)}:{line}: {target}: no heading with anchor #{anchor}")
    assert not broken, "\n".join(broken)


def make_commands() -> list[_commands.Command]:
    return [c for p in PAGES for c in _commands.commands(p) if c.words[0] == "make"]


def test_docs_show_make_commands() -> None:
    """The parsing below found what it checks (it would pass on nothing otherwise)."""
    shown = {t for c in make_commands() for t in _commands.make_targets(c.words)}
    assert {"phase1", "phase2", "phase3", "load-test-capacity", "bench", "report"} <= shown


@cache
def make_dry_run(words: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-n", *words[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_make_commands_exist_with_their_variables(page: Path, tmp_path: Path) -> None:
    problems = []
    for c in _commands.commands(page):
        if c.words[0] != "make":
            continue
        where = f"{name(page)}:{c.line}: {c.text.strip()}"
        targets = _commands.make_targets(c.words)
        unknown = [t for t in targets if t not in _commands.recipes()]
        if unknown:
            problems.append(f"{where}: no make target {unknown}")
            continue
        result = make_dry_run(tuple(c.words))
        if result.returncode != 0:
            problems.append(f"{where}: make -n failed: {result.stderr.strip()}")
        accepted = set().union(*(_commands.variables(t) for t in targets))
        stray = sorted(set(c.assignments) - accepted)
        if stray:
            problems.append(f"{where}: {stray} not read by make {' '.join(targets)}")
        problems += [f"{where}: {p}" for p in loadtest_refuses(targets, c.assignments, tmp_path)]
    assert not problems, "\n".join(problems)


def loadtest_refuses(targets: list[str], shown: dict[str, str], tmp_path: Path) -> list[str]:
    """What `python -m lab.loadtest` would refuse in the variables shown, before k6 starts."""
    refused = []
    for target in targets:
        scenario = _commands.loadtest_scenario(target)
        if scenario is None:
            continue
        # No phase runs here: name one, and a Prometheus that is certainly not there.
        env = {"PHASE": "phase1", "PROMETHEUS_URL": "http://127.0.0.1:9", **shown}
        try:
            loadtest.plan(scenario, env, results=tmp_path, state=None)
        except loadtest.UsageError as exc:
            refused.append(f"lab.loadtest refuses it: {exc}")
    return refused


@cache
def module_help(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_python_commands_exist_with_their_options(page: Path) -> None:
    problems = []
    for c in _commands.commands(page):
        module = _commands.python_module(c.words)
        if module is None:
            continue
        where = f"{name(page)}:{c.line}: {c.text.strip()}"
        shown = module_help(module)
        if shown.returncode != 0:
            problems.append(f"{where}: `python -m {module} --help` failed: {shown.stderr}")
            continue
        missing = [o for o in _commands.options(c.words[3:]) if o not in shown.stdout]
        if missing:
            problems.append(f"{where}: {module} has no option {missing}")
    assert not problems, "\n".join(problems)


def alerts() -> list[dict[str, Any]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [rule for rule in group["rules"] if "alert" in rule]
    return found


def test_every_runbook_lands_on_a_metrics_section() -> None:
    rules = alerts()
    assert len(rules) >= 9
    metrics_page = DOCS / "metrics.md"
    broken = []
    for rule in rules:
        url = rule["annotations"]["runbook"]
        path, _, anchor = url.partition("#")
        if (REPO / path).resolve() != metrics_page or anchor != rule["alert"].lower():
            broken.append(f"{rule['alert']}: runbook {url} is not docs/metrics.md#<alert>")
        elif anchor not in anchors(metrics_page):
            broken.append(f"{rule['alert']}: docs/metrics.md has no heading for #{anchor}")
    assert not broken, "\n".join(broken)


PREDICTIONS = {
    "scale/predicted": _results.predicted_row,
    "scale/machine": _results.machine_prediction_row,
    "scale/cores": _results.cores_row,
    "scale/sizing": _results.sizing_row,
    "scale/load": _results.load_row,
}


@cache
def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def check_table(page: Path, table: _markdown.Table) -> list[str]:
    where = f"{name(page)}:{table.line}"
    source = (page.parent / table.source).resolve()
    if not source.is_file() or not source.is_relative_to(DOCS):
        return [f"{where}: {table.source} is not a file in docs/"]
    data = load_json(source)
    if data.get("bench", {}).get("quick"):
        return [f"{where}: {table.source} is a --quick run: its numbers are not measurements"]
    if not table.rows:
        return [f"{where}: no table rows after the marker"]
    problems = []
    for row in table.rows:
        key = _results.plain(row[0])
        try:
            if table.scope == "scale":
                expected = _results.scale_row(data, key)
            elif table.scope == "cost":
                expected = _results.cost_row(data, key)
            elif table.scope == "cost/goals":
                expected = _results.cost_goal_row(data, key)
            elif table.scope == "shed":
                expected = _results.shed_row(data, key)
            elif table.scope == "failover":
                expected = _results.failover_row(data, key)
            elif table.scope == "cluster":
                expected = _results.cluster_row(data, key)
            elif table.scope.startswith("scale/"):
                expected = PREDICTIONS[table.scope](data, key)
            elif table.scope.endswith("/search"):
                expected = _results.search_row(data, table.scope.split("/")[0], key)
            elif table.scope:
                expected = _results.service_row(data, table.scope, key)
            elif "bench" in data:
                expected = _results.bench_row(data, key)
            elif "capacity" in data.get("lab", {}):
                expected = _results.capacity_row(data, key)
            else:
                expected = _results.target_row(data, key)
        except KeyError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for header, cell in zip(table.header[1:], row[1:], strict=False):
            column = _results.plain(header)
            if column in _results.FREE_TEXT:
                continue
            if column not in expected:
                problems.append(f"{where}: column {column!r} has no source in {table.source}")
            elif _results.plain(cell) != expected[column]:
                problems.append(
                    f"{where}: {key} / {column}: the page says {_results.plain(cell)!r}, "
                    f"{table.source} says {expected[column]!r}"
                )
    return problems


@pytest.mark.parametrize("page", [p for p in PAGES if p.is_relative_to(DOCS)], ids=name)
def test_numbers_in_marked_tables_match_their_results_file(page: Path) -> None:
    problems = [p for t in _markdown.marked_tables(page) for p in check_table(page, t)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_marker_is_read(page: Path) -> None:
    """A `numbers from` comment the marker pattern does not read (a scope it does not know)
    leaves its table unchecked, silently: the shed and cost tables were, once."""
    comments = [
        (number, line)
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if "numbers from" in line and line.lstrip().startswith("<!--")
    ]
    read = {t.line for t in _markdown.marked_tables(page)}
    unread = [
        f"{name(page)}:{number}: {line.strip()}" for number, line in comments if number not in read
    ]
    assert not unread, "markers no test reads:\n" + "\n".join(unread)


@pytest.mark.parametrize("page", ["results.md", "01-monolith.md", "02-replicas.md", "03-queue.md"])
def test_result_pages_quote_a_committed_bench(page: str) -> None:
    sources = [t.source for t in _markdown.marked_tables(DOCS / page)]
    benches = [s for s in sources if "bench" in load_json((DOCS / s).resolve())]
    assert benches, f"docs/{page} has no table marked <!-- numbers from results/<bench>.json -->"


def test_readme_latest_results_are_a_bench_table() -> None:
    lines = _markdown.section(REPO / "README.md", "Latest results")
    text = "\n".join(lines)
    assert "(docs/results.md)" in text, "the section links docs/results.md"
    named = re.findall(r"\((docs/results/[^)\s]+\.md)\)", text)
    assert named, "the section names the bench Markdown file its table comes from"
    bench = (REPO / named[0]).read_text().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) >= 3, "the section has a table"
    copied = [row for row in rows if row not in bench]
    assert not copied, f"rows not found as they are in {named[0]}: {copied}"


def panel_titles() -> dict[str, set[str]]:
    """Dashboard title without `Signup: ` -> its panel titles (rows included)."""
    return {
        board.title.removeprefix("Signup: "): {p.title for p in board.panels}
        | {str(p.get("title")) for p in board.raw.get("panels", []) if p.get("type") == "row"}
        for board in dashboards.load()
    }


@pytest.mark.parametrize("page", [DOCS / p for p in OWN_PAGES], ids=name)
def test_panel_references_name_real_panels(page: Path) -> None:
    """A link written `[Dashboard \u203a Panel](...)` names a panel of that dashboard."""
    titles = panel_titles()
    wrong = []
    for line, text, _target in _markdown.links(page):
        if PANEL not in text:
            continue
        board, _, panel = (part.strip() for part in text.partition(PANEL))
        if panel not in titles.get(board, set()):
            wrong.append(f"{name(page)}:{line}: no panel {panel!r} on dashboard {board!r}")
    assert not wrong, "\n".join(wrong)


def test_tutorial_pages_point_at_panels() -> None:
    for page in TUTORIAL[1:]:
        found = [t for _line, t, _target in _markdown.links(DOCS / page) if PANEL in t]
        assert len(found) >= 3, f"docs/{page} names fewer than 3 panels to watch"


def test_metrics_page_covers_every_metric_panel_and_alert() -> None:
    page = DOCS / "metrics.md"
    text = page.read_text()
    source = (REPO / "shared" / "signup" / "metrics.py").read_text()
    metrics = re.findall(r"(?:Counter|Gauge|Histogram)\(\s*\"(\w+)\"", source)
    assert len(metrics) >= 20, "the metric definitions were not found"
    missing = [m for m in metrics if f"`{m}`" not in text]
    missing += [r["alert"] for r in alerts() if f"### {r['alert']}\n" not in text]
    for board in dashboards.load():
        rows = {_markdown.cells(line)[0] for line in _markdown.section(page, board.title)}
        missing += [f"{board.title} / {p.title}" for p in board.panels if p.title not in rows]
    assert not missing, f"docs/metrics.md does not describe {missing}"


# A number in a tutorial page's prose is either measured, and then comes from the run its
# tables cite (`_results.quotable`), or one of these settings, each from where it is set.
SETTINGS = {
    # the SLO (loadtests/lib/profiles.js): p95 < 100 ms, errors < 0.1 %, dropped < 1 %
    "95",
    "100",
    "0.1",
    # the phases' targets and the load tests' fixed rates (loadtests/lib/profiles.js)
    "1,000",
    "100,000",
    "1,000,000",
    "1,667",
    "167",
    # HTTP statuses of the API (README.md#the-api)
    "201",
    "202",
    "400",
    "409",
    "413",
    "500",
    "503",
    # compose limits (phase READMEs): 0.5 CPU, 512 MB; connection counts are checked against
    # the compose files in test_connection_counts.py
    "0.5",
    "512",
    # each capacity step lasts 30 s; the bench's runs 15 s; the burst 60 s
    "30",
    "15",
    # planning utilisation of beyond-one-machine.md, 60 %
    "0.6",
    # bytes per claim in Redis (phase3-queue/README.md#memory)
    "13",
}


def settings() -> set[str]:
    """SETTINGS, and the ones read from their files: the scale model's quotas, the capacity
    test's default steps, and the histogram buckets (ms for latencies)."""
    found = set(SETTINGS)
    env = (REPO / "shared" / "scale-model.env").read_text()
    found |= set(re.findall(r"^\w+_CPUS=([\d.]+)", env, re.MULTILINE))
    found.add(str(int(re.findall(r"^LAB_CPU_PERIOD_US=(\d+)", env, re.MULTILINE)[0]) // 1000))
    profiles = (REPO / "loadtests" / "lib" / "profiles.js").read_text()
    steps = re.search(r"__ENV\.STEPS \|\| '([\d,]+)'", profiles)
    assert steps, "the capacity test's default steps were not found"
    found |= {f"{int(s):,}" for s in steps.group(1).split(",")} | set(steps.group(1).split(","))
    # The share of its quota at which a service counts as the wall, and of the machine's
    # cores at which the machine does (lab/loadtest/_walls.py).
    walls = (REPO / "shared" / "lab" / "loadtest" / "_walls.py").read_text()
    for name in ("AT_QUOTA", "MACHINE_FULL"):
        share = re.search(rf"^{name} = ([\d.]+)$", walls, re.MULTILINE)
        assert share, f"{name} was not found in lab/loadtest/_walls.py"
        found.add(f"{float(share.group(1)) * 100:.0f}")
    metrics = (REPO / "shared" / "signup" / "metrics.py").read_text()
    for bucket in re.findall(r"\b(\d+(?:\.\d+)?)\b", metrics[metrics.index("BUCKETS") :]):
        value = float(bucket)
        found |= {f"{value:,.0f}", f"{value * 1000:,.0f}"}
    return found


@pytest.mark.parametrize(
    "page", ["01-monolith.md", "02-replicas.md", "03-queue.md", "beyond-one-machine.md"]
)
def test_numbers_in_the_prose_come_from_the_run_or_a_setting(page: Path | str) -> None:
    path = DOCS / str(page)
    sources = {t.source for t in _markdown.marked_tables(path)}
    runs = [s for s in sources if "scale_model" in load_json((DOCS / s).resolve())]
    assert len(runs) == 1, f"docs/{page} cites {sorted(sources)}: one bench run, please"
    allowed = _results.quotable(load_json((DOCS / runs[0]).resolve())) | settings()
    stray = [
        f"docs/{page}:{line}: {number}"
        for line, number in _markdown.prose_numbers(path)
        if number not in allowed and float(number.replace(",", "")) > 12
    ]
    assert not stray, "numbers neither in " + runs[0] + " nor a setting:\n" + "\n".join(stray)


# Phase 4's own settings, each from where it is set: the cluster's 16,384 hash slots (Redis),
# the node timeout (phase4-cluster/compose.yaml), the shards (SHARDS) and nodes (REDIS_NODES).
CLUSTER_SETTINGS = {"16,384", "3,000", "3000"}


def test_numbers_in_the_cluster_page_come_from_its_run_or_a_setting() -> None:
    path = DOCS / "04-cluster.md"
    sources = {t.source for t in _markdown.marked_tables(path)}
    runs = [s for s in sources if load_json((DOCS / s).resolve())["bench"]["part"] == "failover"]
    assert len(runs) == 1, f"docs/04-cluster.md cites {sorted(sources)}: one failover run, please"
    allowed = _results.failover_quotable(load_json((DOCS / runs[0]).resolve()))
    for table in _markdown.marked_tables(path):
        if table.scope == "cluster":
            allowed |= _results.cluster_quotable(load_json((DOCS / table.source).resolve()))
    allowed |= settings() | CLUSTER_SETTINGS
    stray = [
        f"docs/04-cluster.md:{line}: {number}"
        for line, number in _markdown.prose_numbers(path)
        if number not in allowed and float(number.replace(",", "")) > 12
    ]
    assert not stray, "numbers neither in " + runs[0] + " nor a setting:\n" + "\n".join(stray)
