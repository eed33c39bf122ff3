"""How a capacity run ends: with the rate it held and where it broke, which is its answer.

k6 exits 99 when a threshold is crossed, and a capacity run is meant to cross one: it climbs
until the SLO breaks. Read as a failure, every such run ended in `make: *** Error 99`, which
looked like a crash. Here the summary's verdict decides instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def result(summary: dict[str, Any], path: Path) -> int:
    """A capacity run is meant to end where the SLO breaks: that is its answer, exit 0. When
    every step held it says to climb higher (exit 0 too: the run worked); it failed only when
    no step held (exit 1, with lower steps to try)."""
    verdict = summary.get("lab", {}).get("capacity", {})
    steps, held = verdict.get("steps", []), int(verdict.get("sustained_rate", 0))
    broke = next((s["rate"] for s in steps if not s["ok"]), None)
    if held and broke is not None:
        print(f"capacity: held {held}/s within the SLO; it broke at {broke}/s. Summary: {path}")
        return 0
    if held:
        print(f"capacity: every step held, up to {held}/s: try higher STEPS. Summary: {path}")
        return 0
    first = steps[0]["rate"] if steps else None
    lower = ",".join(str(max(1, (first or 100) * k // 8)) for k in (1, 2, 3, 4, 6))
    print(
        f"capacity: the SLO broke at the first step ({first}/s), so no rate held. Start lower, "
        f"for example STEPS={lower}. Summary: {path}",
        file=sys.stderr,
    )
    return 1
