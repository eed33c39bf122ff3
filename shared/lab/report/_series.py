"""One series of a panel as drawn: its legend name, its points, its colour and the field
overrides that matched it.

Apart from _plot, which makes the lines, so that _plot_values (which _plot imports) can take
them without importing _plot back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Line:
    name: str
    times: list[float]
    values: list[float]
    colour: str
    props: dict[str, Any]  # the field overrides that matched this series

    def last(self) -> float:
        real = [v for v in self.values if not math.isnan(v)]
        return real[-1] if real else math.nan
