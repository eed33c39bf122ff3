"""Waiting on real conditions and reading /metrics: shared by the integration and phase tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll `condition` until it is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.0f}s: {what or condition}")
        time.sleep(0.05)


def scrape(url: str) -> dict[str, float]:
    """Every sample of a Prometheus exposition, keyed by name and labels as written."""
    return parse(httpx.get(url, timeout=10).text)


def parse(exposition: str) -> dict[str, float]:
    """The samples of an exposition's text, however it was fetched."""
    samples = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples
