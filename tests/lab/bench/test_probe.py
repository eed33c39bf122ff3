"""Reading numbers off running processes: histogram quantiles as Prometheus computes them."""

from __future__ import annotations

import math

import pytest

from lab.bench._probe import Histogram


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1].
    hist = Histogram({0.1: 50, 0.5: 90, 1.0: 100, math.inf: 100})
    assert hist.quantile(0.5) == pytest.approx(0.1)
    assert hist.quantile(0.7) == pytest.approx(0.3)
    assert hist.quantile(0.95) == pytest.approx(0.75)
    earlier = Histogram({0.1: 50, 0.5: 50, 1.0: 50, math.inf: 50})
    assert hist.minus(earlier).quantile(0.5) == pytest.approx(0.35)  # rank 25 of 40 in (0.1, 0.5]
    assert Histogram({math.inf: 0}).quantile(0.5) is None
