"""Progress lines: which step, how long the bench has run, and what the step measures."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _stamp(self) -> str:
        seconds = int(self.elapsed())
        return f"[{seconds // 60:02d}:{seconds % 60:02d}]"

    def section(self, title: str, what: str) -> None:
        print(f"\n{self._stamp()} == {title}: {what}", flush=True)

    def step(self, what: str) -> None:
        print(f"{self._stamp()}    {what} ...", flush=True)

    def result(self, text: str) -> None:
        print(f"{self._stamp()}      -> {text}", flush=True)

    def note(self, text: str) -> None:
        print(f"{self._stamp()}    {text}", flush=True)

    def warn(self, text: str) -> None:
        print(f"{self._stamp()}    WARNING: {text}", file=sys.stderr, flush=True)
