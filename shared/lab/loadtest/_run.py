"""A load test as planned (`LoadTest`) and one k6 pass of it as it went (`Pass`): data only.

Apart from lab.loadtest, which plans and runs them, so that _capacity (which lab.loadtest
imports) can take both without importing lab.loadtest back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.state import RunState


@dataclass(frozen=True)
class LoadTest:
    """One k6 run, every argument checked and resolved before k6 starts."""

    scenario: str
    phase: str
    base_url: str
    test_id: str
    variables: dict[str, str]
    summary: Path
    meta: Path
    prometheus: str | None
    database_url: str | None = None  # set when the target is the phase running here
    # The soak samples the native stack's processes: the supervisor's state, when it runs.
    state: RunState | None = None


@dataclass(frozen=True)
class Pass:
    """One k6 process: its exit code, its span, whether every acknowledged signup is a row."""

    code: int
    started: float
    ended: float
    rows_ok: bool = True
    # k6 ended the way a run with an answer does (done, or stopped by the SLO) and wrote it.
    answered: bool = False
