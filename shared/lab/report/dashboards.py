"""The Grafana dashboards as data: every panel and its PromQL, ready to run against Prometheus.

No Grafana installs on the lab's machines, so the tests and `make report` run the dashboards'
queries themselves. This module reads monitoring/grafana/dashboards/*.json, walks every panel
(also those inside collapsed rows) and substitutes Grafana's variables the way Grafana does
for one choice of them: `$phase` and `$instance` (regexes: ".*" is Grafana's "All"),
`$__rate_interval`, `$__range`, `$__interval`, and the dashboards' custom variables (their
current value).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.topology import REPO

DASHBOARDS = REPO / "monitoring" / "grafana" / "dashboards"
DATASOURCE_UID = "signup-prometheus"
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Query:
    ref: str
    expr: str
    legend: str
    instant: bool


@dataclass(frozen=True)
class Panel:
    dashboard: str  # the dashboard's uid
    id: int
    title: str
    type: str
    row: str  # title of the collapsed row holding it, "" at the top level
    queries: tuple[Query, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.dashboard}/{self.title}"

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The field defaults every series of the panel gets: unit, thresholds, min/max."""
        found: Mapping[str, Any] = self.raw.get("fieldConfig", {}).get("defaults", {})
        return found

    @property
    def unit(self) -> str:
        return str(self.defaults.get("unit", "short"))

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The threshold steps, the base (its value null) first."""
        found: list[dict[str, Any]] = self.defaults.get("thresholds", {}).get("steps", [])
        return found


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    path: Path
    panels: tuple[Panel, ...]
    variables: Mapping[str, str]  # custom variables -> their current value
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def load(folder: Path = DASHBOARDS) -> list[Dashboard]:
    """Every dashboard of `folder`, in file name order."""
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        uid = str(raw.get("uid", ""))
        panels = tuple(_panels(uid, raw.get("panels", [])))
        found.append(Dashboard(uid, str(raw.get("title", "")), path, panels, _custom(raw), raw))
    return found


def _panels(uid: str, items: list[dict[str, Any]], row: str = "") -> Iterator[Panel]:
    for item in items:
        if item.get("type") == "row":
            yield from _panels(uid, item.get("panels", []), str(item.get("title", "")))
            continue
        queries = tuple(
            Query(
                ref=str(t.get("refId", "")),
                expr=str(t.get("expr", "")),
                legend=str(t.get("legendFormat", "")),
                instant=bool(t.get("instant", False)),
            )
            for t in item.get("targets", [])
        )
        yield Panel(uid, int(item["id"]), str(item["title"]), str(item["type"]), row, queries, item)


def _custom(raw: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for var in raw.get("templating", {}).get("list", []):
        if var.get("type") in ("custom", "constant", "textbox"):
            current = var.get("current", {}).get("value", var.get("query", ""))
            values[str(var["name"])] = str(current)
    return values


def panels(dashboards: list[Dashboard] | None = None) -> Iterator[Panel]:
    for board in load() if dashboards is None else dashboards:
        yield from board.panels


def rate_interval(step: float, scrape_interval: float) -> float:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval)."""
    return max(step + scrape_interval, 4 * scrape_interval)


def duration(seconds: float) -> str:
    """A PromQL duration, rounded up to whole seconds (or milliseconds below 10 s)."""
    if seconds < 10:
        return f"{math.ceil(seconds * 1000)}ms"
    return f"{math.ceil(seconds)}s"


def substitute(
    expr: str,
    *,
    phase: str = ".*",
    instance: str = ".*",
    rate_interval: str = "1m",
    range_: str = "15m",
    interval: str = "15s",
    variables: Mapping[str, str] | None = None,
) -> str:
    """`expr` with every Grafana variable replaced; an unknown variable is an error."""
    values = {
        **(variables or {}),
        "phase": phase,
        "instance": instance,
        "__rate_interval": rate_interval,
        "__range": range_,
        "__interval": interval,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in: {expr}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legendFormat: `{{label}}` replaced by the series' label value."""
    if not template:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{labels.get('__name__', '')}{{{inner}}}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
