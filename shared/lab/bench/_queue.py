"""Phase 3's own figures: the time from a 202 to its row, and how fast a backlog drains.

Both come from the writer's metrics (`signup_accept_to_row_seconds`,
`signup_writer_rows_inserted_total`), read straight from each writer process. The backlog is
made on purpose: the writers are paused (SIGSTOP) while k6 offers the sustained rate, then
resumed with no load, and the rows they insert per second until the stream is empty is the
drain rate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import psutil

from lab.bench._plan import Plan
from lab.bench._probe import Histogram, sum_metric
from lab.bench._progress import Progress
from lab.bench._steps import Runner
from lab.stack import Stack

if TYPE_CHECKING:
    from lab.bench._targets import Settler

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


def _processes(stack: Stack) -> list[psutil.Process]:
    procs: list[psutil.Process] = []
    for entry in stack.entries("writer"):
        if entry.process is None or entry.process.pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(entry.process.pid)
            procs += [root, *root.children(recursive=True)]
    return procs


def _signal(procs: list[psutil.Process], signum: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.kill(proc.pid, signum)


def drain(
    stack: Stack, runner: Runner, settle: Settler, plan: Plan, progress: Progress, rate: int
) -> dict[str, Any]:
    urls = writer_urls(stack)
    procs = _processes(stack)
    if not procs or not urls:
        return {"drain": None, "drain_note": "no writer process with metrics found"}
    progress.step(
        f"backlog drain: writers paused, offering {rate}/s for {plan.drain_seconds}s "
        "to fill the stream"
    )
    inserted_before = sum_metric(urls, ROWS)
    _signal(procs, signal.SIGSTOP)
    try:
        step = runner.run(rate, plan.drain_seconds)
        backlog = step.acknowledged
        progress.step(f"resuming the writers: how fast do {backlog:,} queued signups become rows")
        started = time.monotonic()
        _signal(procs, signal.SIGCONT)
        deadline = started + plan.settle_timeout
        while sum_metric(urls, ROWS) - inserted_before < backlog:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backlog of {backlog} not drained in {plan.settle_timeout}s")
            time.sleep(0.02)  # polling the writers' own counter, bounded by the deadline
        seconds = time.monotonic() - started
    finally:
        _signal(procs, signal.SIGCONT)  # never leave a writer stopped, whatever happened
    settle.after(step)
    result = {"backlog": backlog, "seconds": round(seconds, 3), "rows_per_s": backlog / seconds}
    progress.result(f"{backlog:,} rows in {seconds:.2f}s: {backlog / seconds:,.0f} rows/s")
    return {"drain": result}
