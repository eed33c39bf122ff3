"""`python -m lab.report`: every dashboard panel as a PNG, from Prometheus, without Grafana.

    python -m lab.report [--out DIR] [--from T --to T] [--phase phase1|all] [--prometheus URL]

The time range defaults to the last load test (the newest *.meta.json that `make load-test-*`
writes into loadtests/results, or $LOADTEST_RESULTS_DIR), padded by 30 s each side so rates
ramp up and down in the picture; with no load test yet, the last 15 minutes. T is unix
seconds, ISO 8601 (2026-01-31T12:00:00Z), `now` or `now-15m`. The phase defaults to the load
test's (else all phases side by side).
Prometheus defaults to the native stack running here, else http://127.0.0.1:9090 (Docker).

Writes DIR/<dashboard uid>/<NN>-<panel>.png, one per panel, and DIR/index.md + index.html.

The package draws the dashboards from Prometheus: this module picks the time range and writes
the pictures and their index (its command is __main__.py); dashboards reads the Grafana JSON
into panels and queries, _promapi asks Prometheus, _plot and _plot_values draw a panel (its
lines are _series), _units formats values as Grafana does. It imports the base modules of lab
only (to find the native Prometheus through the run state), never a runtime or the load tests:
it reads their files.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab import state
from lab.report import _plot, dashboards
from lab.report._promapi import Prometheus, PrometheusError, Series, Unreachable
from lab.topology import PHASES, REPO

# Where lab.loadtest writes its meta files (it honours the same variable).
RESULTS = Path(os.environ.get("LOADTEST_RESULTS_DIR", REPO / "loadtests" / "results"))
PAD = 30.0
FALLBACK = 15 * 60.0
MAX_POINTS = 600  # per series: enough for a smooth line, far below Prometheus's 11,000
META_FIELDS = ("scenario", "phase", "started_at", "ended_at", "test_id")
STAMP = "%Y%m%dT%H%M%SZ"  # in folder names, as in the load tests' file names


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    phase: str  # a regex for $phase: ".*" is all phases
    source: str  # what the range came from, for the index
    name: str  # folder name when --out is not given


def parse_time(text: str, now: float) -> float:
    text = text.strip()
    relative = re.fullmatch(r"now(?:-(\d+)([smhd]))?", text)
    if relative:
        amount, unit = relative.groups()
        return now - (int(amount) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] if amount else 0)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r}: use unix seconds, ISO 8601, now or now-15m") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def last_run(results: Path) -> tuple[dict[str, object], Path] | None:
    """The newest valid meta file; broken ones are skipped, each with one line saying why."""
    found = []
    for path in results.glob("*.meta.json"):
        try:
            meta = json.loads(path.read_text())
            missing = [f for f in META_FIELDS if f not in meta]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            started, ended = float(meta["started_at"]), float(meta["ended_at"])
            if ended < started:
                raise ValueError("ended_at is before started_at")
        except (OSError, ValueError, TypeError) as exc:
            print(f"ignoring {path}: {exc}", file=sys.stderr)
            continue
        found.append((ended, meta, path))
    if not found:
        return None
    _, meta, path = max(found, key=lambda item: item[0])
    return meta, path


def choose_window(args: argparse.Namespace, now: float) -> Window:
    phase = None if args.phase is None else (".*" if args.phase == "all" else args.phase)
    if args.start is not None or args.end is not None:
        end = parse_time(args.end or "now", now)
        start = parse_time(args.start, now) if args.start else end - FALLBACK
        window = Window(start, end, phase or ".*", "--from/--to", f"report-{_utc(start, STAMP)}")
    elif (found := last_run(args.results_dir)) is not None:
        meta, path = found
        start = float(str(meta["started_at"])) - PAD
        end = min(float(str(meta["ended_at"])) + PAD, now)
        source = f"load test {meta['test_id']} ({meta['scenario']}, {meta['phase']}; {path.name})"
        window = Window(
            start, end, phase or str(meta["phase"]), source, f"report-{meta['test_id']}"
        )
    else:
        source = "the last 15 minutes (no load test found)"
        window = Window(now - FALLBACK, now, phase or ".*", source, f"report-{_utc(now, STAMP)}")
    if window.end <= window.start:
        raise ValueError("the range is empty: --from must be before --to")
    if window.end - window.start > 31 * 86400:
        raise ValueError("the range is longer than 31 days")
    return window


def default_prometheus() -> str:
    running = state.read(state.RUN_DIR)
    return (running.url("prometheus") if running else None) or "http://127.0.0.1:9090"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render(
    prometheus: Prometheus, window: Window, out: Path
) -> tuple[list[tuple[str, str, str, Path, str]], int]:
    """Every panel to PNG; returns (dashboard, row, panel, path, note) per panel and the errors."""
    scrape = prometheus.scrape_interval()
    span = window.end - window.start
    step = max(scrape, float(int(span / MAX_POINTS) or 1))
    boards = dashboards.load()
    total = sum(len(b.panels) for b in boards)
    written, errors, count = [], 0, 0
    when = f"{_utc(window.start)} to {_utc(window.end)} UTC"
    phase = "all phases" if window.phase == ".*" else window.phase
    for board in boards:
        for number, panel in enumerate(board.panels, start=1):
            count += 1
            print(f"[{count}/{total}] {board.title} / {panel.title} ... ", end="", flush=True)
            results: list[tuple[str, Sequence[Series]]] = []
            note = ""
            for query in panel.queries:
                expr = dashboards.substitute(
                    query.expr,
                    phase=window.phase,
                    rate_interval=dashboards.duration(dashboards.rate_interval(step, scrape)),
                    range_=dashboards.duration(span),
                    interval=dashboards.duration(step),
                    variables=board.variables,
                )
                try:
                    if query.instant:
                        series = prometheus.query(expr, window.end)
                    else:
                        series = prometheus.query_range(expr, window.start, window.end, step)
                except Unreachable:
                    print(flush=True)  # end the progress line before the error
                    raise
                except PrometheusError as exc:
                    errors += 1
                    note = f"query {query.ref} failed: {exc}"
                    series = []
                results.append((query.legend, series))
            lines = _plot.lines(panel, results)
            path = out / board.uid / f"{number:02d}-{slug(panel.title)}.png"
            subtitle = f"{board.title}{' / ' + panel.row if panel.row else ''} | {phase} | {when}"
            _plot.draw(panel, lines, (window.start, window.end), path, subtitle)
            has_data = any(s.has_data() for _, series in results for s in series)
            note = note or ("" if has_data else "no data")
            print(note or f"{len(lines)} series")
            written.append((board.title, panel.row, panel.title, path, note))
    return written, errors


def _utc(moment: float, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime(pattern)


def write_index(
    out: Path, window: Window, url: str, panels: list[tuple[str, str, str, Path, str]]
) -> Path:
    header = [
        f"Range: {_utc(window.start)} to {_utc(window.end)} UTC, from {window.source}.",
        f"Phase: {'all' if window.phase == '.*' else window.phase}. Prometheus: {url}.",
    ]
    md = ["# Signup lab dashboards", "", *header, ""]
    page = [
        "<!doctype html><meta charset=utf-8><title>Signup lab dashboards</title>",
        "<body style='font-family:sans-serif'><h1>Signup lab dashboards</h1>",
    ]
    page += [f"<p>{html.escape(line)}</p>" for line in header]
    current = None
    for board, row, title, path, note in panels:
        if board != current:
            md += [f"## {board}", ""]
            page.append(f"<h2>{html.escape(board)}</h2>")
            current = board
        rel = path.relative_to(out).as_posix()
        name = f"{row}: {title}" if row else title
        md += [f"### {name}" + (f" ({note})" if note else ""), "", f"![{title}]({rel})", ""]
        page.append(
            f"<h3>{html.escape(name)}</h3><img src='{html.escape(rel)}' alt='{html.escape(title)}'>"
        )
    (out / "index.md").write_text("\n".join(md))
    (out / "index.html").write_text("\n".join(page) + "\n")
    return out / "index.html"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, help="folder for the PNGs (default loadtests/results/report-<run>)"
    )
    parser.add_argument(
        "--from", dest="start", help="start of the range (default: the last load test)"
    )
    parser.add_argument(
        "--to", dest="end", help="end of the range (default: now or the load test's end)"
    )
    parser.add_argument(
        "--phase", choices=[*PHASES, "all"], help="phase to show (default: the load test's)"
    )
    parser.add_argument(
        "--prometheus", help="Prometheus URL (default: the native stack here, else :9090)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        help="where the load tests' meta files are (default $LOADTEST_RESULTS_DIR or "
        "loadtests/results)",
    )
    args = parser.parse_args(argv)
    try:
        window = choose_window(args, time.time())
    except ValueError as exc:
        parser.error(str(exc))
    url = args.prometheus or default_prometheus()
    prometheus = Prometheus(url)
    out: Path = args.out or args.results_dir / window.name
    try:
        prometheus.ready()
        print(f"rendering {window.source} from {url} into {out}", flush=True)
        panels, errors = render(prometheus, window, out)
    except Unreachable as exc:
        print(
            f"error: {exc}: start a phase (make phase1) or pass --prometheus URL", file=sys.stderr
        )
        return 2
    index = write_index(out, window, url, panels)
    print(f"wrote {len(panels)} panels to {out} (open {index})")
    if errors:
        print(f"error: {errors} queries failed; their panels say which", file=sys.stderr)
        return 1
    return 0
