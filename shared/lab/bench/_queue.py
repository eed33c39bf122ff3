"""Phase 3's own figures: the time from a 202 to its row, and how fast a backlog drains.

Both come from the writer's metrics (`signup_accept_to_row_seconds`,
`signup_writer_rows_inserted_total`), read straight from each writer process. The backlog is
made on purpose: the writers are stopped while k6 offers the sustained rate, then started
again with no load, and the rows they insert per second until the stream is empty is the
drain rate.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lab.bench._plan import Plan
from lab.bench._probe import Histogram, sum_metric
from lab.bench._progress import Progress
from lab.bench._steps import Runner
from lab.native.stack import Stack

if TYPE_CHECKING:
    from lab.bench._settle import Settler

ACCEPT_TO_ROW = "signup_accept_to_row_seconds"
ROWS = "signup_writer_rows_inserted_total"


def writer_urls(stack: Stack) -> list[str]:
    return [f"http://{a}" for a in stack.ctx.members.get("writer", [])]


def accept_histogram(stack: Stack) -> Histogram | None:
    urls = writer_urls(stack)
    return Histogram.scrape(urls, ACCEPT_TO_ROW) if urls else None


def accept_to_row(before: Histogram | None, after: Histogram | None) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    delta = after.minus(before)
    return {
        "count": int(delta.count),
        "p50_s": delta.quantile(0.5),
        "p95_s": delta.quantile(0.95),
        "p99_s": delta.quantile(0.99),
    }


def drain(
    stack: Stack, runner: Runner, settle: Settler, plan: Plan, progress: Progress, rate: int
) -> dict[str, Any]:
    urls = writer_urls(stack)
    writers = [e.process for e in stack.entries("writer") if e.process is not None]
    if not writers or not urls:
        return {"drain": None, "drain_note": "no writer process with metrics found"}
    progress.step(
        f"backlog drain: writers stopped, offering {rate}/s for {plan.drain_seconds}s "
        "to fill the stream"
    )
    # Stopped, not paused: SIGTERM lets a writer finish and acknowledge its batch, whereas a
    # SIGSTOPped one would time out on the read it was blocked in and leave those entries
    # pending until another writer claims them (SIGNUP_WRITER_CLAIM_IDLE_MS later).
    for process in writers:
        process.stop()
    step = runner.run(rate, plan.drain_seconds)  # if this fails, the whole stack stops anyway
    for process in writers:
        process.start()  # returns once its metrics answer: a fresh counter at 0
    started = time.monotonic()
    backlog = step.acknowledged
    progress.step(f"writers started again: how fast do {backlog:,} queued signups become rows")
    deadline = started + plan.settle_timeout
    while sum_metric(urls, ROWS) < backlog:
        if time.monotonic() > deadline:
            raise TimeoutError(f"backlog of {backlog} not drained in {plan.settle_timeout}s")
        time.sleep(0.02)  # polling the writers' own counter, bounded by the deadline
    seconds = time.monotonic() - started
    settle.after(step)
    result = {"backlog": backlog, "seconds": round(seconds, 3), "rows_per_s": backlog / seconds}
    progress.result(f"{backlog:,} rows in {seconds:.2f}s: {backlog / seconds:,.0f} rows/s")
    return {"drain": result}
