"""The soak section of phase3-queue/README.md quotes the committed soak it links: every number in
its prose comes from that run's files (`.soak.json`, and k6's `.txt` for the rows) or is one of
the soak's settings in `lab.soak`, so a new run cannot leave the old one's numbers behind."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lab import _soak_sampler as sampling
from lab import soak
from lab.topology import REPO
from tests.docs import _markdown

PAGE = REPO / "phase3-queue" / "README.md"
HEADING = "Half an hour: the soak"
MIB = 1 << 20


def linked_run() -> Path:
    links = {
        (PAGE.parent / target).resolve()
        for _, _, target in _markdown.links(PAGE)
        if target.endswith(".soak.json")
    }
    assert len(links) == 1, f"{PAGE.name} should link one soak run, not {sorted(links)}"
    return links.pop()


def forms(value: float) -> set[str]:
    """The ways the page may write a measured number."""
    return {f"{value:,.0f}", f"{value:,.1f}", f"{value:,.2f}", f"{value:g}"}


def measured(report: dict[str, Any], k6_text: str) -> set[str]:
    found = forms(report["rate"]) | forms(report["slo_ms"])
    for window in report["windows"]:
        found |= forms(window["p99_ms"]) | forms(window["window"] + 1)  # a window is a minute
    for event in report["events"]:
        found |= forms(event["at_s"] / 60) | forms(event["took_s"])
    for verdict in report["memory"]:
        for key in ("base", "grew", "allowed"):
            found |= forms(verdict[key] / MIB)
        added = re.search(r"\+([\d,]+) claims", verdict["note"])
        if added:
            claims = int(added.group(1).replace(",", ""))
            found |= forms(claims) | forms(claims / 1e6) | forms(verdict["grew"] / claims)
    for sample in report["samples"]:
        for value in sample["private"].values():
            found |= forms(value / MIB)
    persisted = re.search(r"persisted: ([\d,]+) rows for ([\d,]+) acknowledged", k6_text)
    assert persisted, "k6's text summary has no `persisted:` line"
    return found | set(persisted.groups())


def settings() -> set[str]:
    minutes = sampling.WINDOWS
    return {
        str(sampling.WINDOWS),
        str(soak.WARMUP_WINDOWS),
        str(sampling.READINGS),
        f"{soak.GROWTH:.0%}".rstrip("%"),
        f"{soak.SHARE:.0%}".rstrip("%"),
        f"{soak.CLAIM_BYTES:g}",
        f"{sampling.CHECKPOINT_AT * minutes:g}",
        f"{sampling.AOF_REWRITE_AT * minutes:g}",
        f"{soak.JITTER / MIB:g}",
    }


def test_the_soak_section_quotes_the_run_it_links() -> None:
    run = linked_run()
    report = json.loads(run.read_text())
    k6_text = run.with_name(run.name.replace(".soak.json", ".txt")).read_text()
    allowed = measured(report, k6_text) | settings()
    numbers = _markdown.prose_numbers(PAGE, HEADING)
    assert numbers, f"no numbers found under '## {HEADING}' in {PAGE.name}"
    stray = [f"line {line}: {number}" for line, number in numbers if number not in allowed]
    assert not stray, f"{PAGE.name} quotes numbers {run.name} does not hold:\n" + "\n".join(stray)
