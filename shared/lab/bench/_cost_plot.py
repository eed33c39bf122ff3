"""The cost part's picture: CPU per signup by service, target beside target, k6 apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from lab.bench._cost import GOALS
from lab.bench._figure import save, stacked

# Below this a service did nothing measurable for a signup (PgBouncer in phase 3): no bar,
# no legend entry.
VISIBLE_MS = 0.005


def draw(results: dict[str, Any], out: Path, stem: str) -> dict[str, str]:
    """{title: file name} of the plot, or nothing if the cost part did not run."""
    cost = results.get("cost")
    if not cost or "targets" not in cost:
        return {}  # not run, or failed
    targets = cost["targets"]
    names = list(targets)
    services = sorted(
        {
            s
            for t in targets.values()
            for s, v in t["ms_per_signup"].items()
            if s != "k6" and v is not None and v >= VISIBLE_MS
        }
    )
    fig, (served, k6) = plt.subplots(
        1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1.3]}
    )
    ms = {s: [targets[n]["ms_per_signup"].get(s) or 0.0 for n in names] for s in services}
    bottom = stacked(served, names, {s: [v if v >= VISIBLE_MS else 0.0 for v in ms[s]] for s in ms})
    for x, total in enumerate(bottom):
        served.annotate(f"{total:.2f}", (x, total), ha="center", va="bottom", fontsize=9)
    bare = targets.get("bare", {}).get("ms_per_signup", {}).get("app")
    if bare is not None:
        served.axhline(bare, color="black", linestyle=":", linewidth=1, label="bare HTTP app")
    served.set_ylabel("CPU ms per signup")
    served.set_title(f"What serving a signup costs, by service, at {cost['rate']:,}/s")
    served.legend(fontsize=8, loc="upper left")
    served.set_ylim(top=max(bottom, default=1.0) * 1.25)
    k6_values = [targets[n]["ms_per_signup"].get("k6") or 0.0 for n in names]
    k6.bar(names, k6_values, color="tab:grey", label="k6")
    k6.axhline(GOALS["k6"], color="tab:red", linestyle="--", linewidth=1, label="goal")
    k6.legend(fontsize=8, loc="lower right")
    k6.set_ylabel("CPU ms per request")
    k6.set_title("What k6 spends sending one")
    name = f"{stem}-cost.png"
    save(fig, out / name)
    return {"CPU per signup by service, and k6's per request": name}
