"""The soak section of phase3-queue/README.md quotes the committed soak it links: every number in
its prose comes from that run's files (`.soak.json`, and k6's `.txt` for the rows) or is one of the
soak's settings, and that run's verdicts are the ones `lab.loadtest.soak.judge` gives its samples
today, so neither a new run nor a new rule can leave old numbers behind."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab.loadtest import _soak_sampler as sampling
from lab.loadtest import soak
from lab.loadtest._soak_sampler import Sample
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
    """What the page may quote: the rate, each window's p99 (and the worst one's minute), the
    events, each verdict, each service's last level over its base, and the rows."""
    found = forms(report["rate"]) | forms(report["slo_ms"])
    windows = report["windows"]
    found |= {f"{w['p99_ms']:.1f}" for w in windows}
    found.add(str(max(windows, key=lambda w: w["p99_ms"])["window"] + 1))  # a window a minute
    for event in report["events"]:
        found |= forms(event["at_s"] / 60) | forms(event["took_s"])
    for verdict in report["memory"]:
        for key in ("base", "grew", "allowed"):
            found |= forms(verdict[key] / MIB)
    samples = [Sample(**sample) for sample in report["samples"]]
    for verdict in report["memory"]:
        base, *_, last = soak.levels(samples, verdict["service"])
        found |= forms((last.private - base.private) / MIB)
        if verdict["service"] == "redis" and base.claims is not None and last.claims is not None:
            claims = last.claims - base.claims
            found |= forms(claims) | forms((last.private - base.private) / claims)
    persisted = re.search(r"persisted: ([\d,]+) rows for ([\d,]+) acknowledged", k6_text)
    assert persisted, "k6's text summary has no `persisted:` line"
    return found | set(persisted.groups())


def settings() -> set[str]:
    minutes = sampling.WINDOWS
    return {
        str(sampling.WINDOWS),
        str(soak.WARMUP_WINDOWS),
        str(soak.LEVEL_WINDOWS),
        str(soak.WARMUP_WINDOWS + soak.LEVEL_WINDOWS - 1),  # the base's last minute
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


def test_the_committed_verdicts_are_what_the_soak_judges_of_its_samples() -> None:
    report = json.loads(linked_run().read_text())
    samples = [Sample(**sample) for sample in report["samples"]]
    assert report["memory"] == [asdict(v) | {"ok": v.ok} for v in soak.judge(samples)]
    assert report["passed"] == {"latency": True, "memory": True, "events": True}
