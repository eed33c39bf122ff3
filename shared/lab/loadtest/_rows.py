"""After a load test: are the acknowledged signups rows in PostgreSQL, once each?

k6 counts the signups the service acknowledged (201, or 202 in phase 3); every email of a run
starts with `u-<run id>-`, so the rows of exactly that run can be counted through the unique
index (the cluster uses the C locale, so a prefix LIKE uses it). In phase 3 the writer may
still be draining the stream when k6 ends: wait until the count reaches k6's, or stops moving.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Persisted:
    acknowledged: int
    rows: int
    distinct_emails: int
    waited_s: float

    @property
    def missing(self) -> int:
        return max(0, self.acknowledged - self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing": self.missing}

    def describe(self) -> str:
        verdict = "none missing" if not self.missing else f"{self.missing:,} MISSING"
        dup = "" if self.distinct_emails == self.rows else ", DUPLICATE emails"
        return (
            f"persisted: {self.rows:,} rows for {self.acknowledged:,} acknowledged signups "
            f"({verdict}{dup}; waited {self.waited_s:.1f}s for the writer)"
        )


def count(url: str, run_id: str) -> tuple[int, int]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT email) FROM users WHERE email LIKE %s",
            (f"u-{run_id}-%",),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def wait_for_rows(
    url: str, run_id: str, acknowledged: int, *, still_for: float = 30.0, timeout: float = 900.0
) -> Persisted:
    """Count until the rows reach `acknowledged`, or have not moved for `still_for` seconds."""
    started = time.monotonic()
    rows, distinct = count(url, run_id)
    last_change = started
    while rows < acknowledged:
        now = time.monotonic()
        if now - last_change > still_for or now - started > timeout:
            break
        time.sleep(0.5)  # between counts of a real condition, bounded above
        new_rows, distinct = count(url, run_id)
        if new_rows != rows:
            rows, last_change = new_rows, time.monotonic()
    return Persisted(acknowledged, rows, distinct, round(time.monotonic() - started, 1))
