"""A burst: for a minute, arrivals well above what phase 2's database can take.

Phase 2 answers each signup only once its row is committed, so past the database's wall its
answers slow down, time out or are shed with 503. Phase 3 answers once the signup is in the
stream; the writer turns the stream into rows in batches, so the burst's excess waits in the
stream (the backlog) and is written after. Sampled every second: arrivals offered, signups
acknowledged, the stream's backlog and the rows inserted. At the end every acknowledged
signup must be a row (phase 2 may hold more rows than acknowledgements: a request can be
committed after its client gave up on it, which the client cannot tell from a failure).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from lab.bench import _plan, _probe
from lab.bench._progress import Progress
from lab.bench._settle import Settler
from lab.bench._steps import Runner
from lab.native.stack import Stack

_INSERTED = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'users'"


def burst(
    stack: Stack, runner: Runner, settle: Settler, plan: _plan.Plan, progress: Progress, rate: int
) -> dict[str, Any]:
    apps = settle.apps
    replicas = len(apps)
    statuses_before = _probe.by_label(apps, "signup_requests_total", "status_code")
    rows_before = settle.rows()
    sampler = runner.sampler
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=5) as conn:
        inserted_before = _inserted(conn)

        # Cheap enough to ask every second: a statistics view and XLEN, never count(*).
        def probe() -> dict[str, float]:
            return {
                "backlog": float(settle.backlog()),
                "rows": float(_inserted(conn) - inserted_before),
            }

        progress.step(
            f"burst: {rate}/s for {plan.burst_seconds}s against {replicas} app replicas, "
            "then until the queue is written"
        )
        started = sampler.now()
        sampler.probe = probe
        try:
            step = settle.after(runner.run(rate, plan.burst_seconds))
            drained = sampler.now()
            # Two more samples after the backlog is gone, so the picture shows it at zero.
            time.sleep(2.5 * sampler.interval)
        finally:
            sampler.probe = None
    rows = settle.rows() - rows_before
    statuses = _probe.by_label(apps, "signup_requests_total", "status_code")
    answered = {
        code: int(count - statuses_before.get(code, 0.0))
        for code, count in sorted(statuses.items())
        if count - statuses_before.get(code, 0.0) > 0
    }
    offered = step.sent + step.dropped
    result = {
        "replicas": replicas,
        "rate": rate,
        "seconds": plan.burst_seconds,
        "offered": offered,
        "acknowledged": step.acknowledged,
        "acknowledged_share": step.acknowledged / offered if offered else 0.0,
        "within_slo": step.slo_held,
        "rows": rows,
        "latency_ms": {"p50": step.p50_ms, "p95": step.p95_ms, "p99": step.p99_ms},
        "error_rate": step.error_rate,
        "dropped": step.dropped,
        "answered_by_status": answered,
        "drained_after_s": round(drained - step.ended, 2),
        "peak_backlog": max(
            (s.extra.get("backlog", 0.0) for s in sampler.samples if s.t >= started), default=0
        ),
        "timeline": [
            {
                "t": round(s.t - started, 2),
                "offered": s.offered,
                "acknowledged": round(s.acknowledged, 1),
                "backlog": s.extra.get("backlog"),
                "rows": s.extra.get("rows"),
            }
            for s in sampler.samples
            if s.t >= started and s.extra
        ],
    }
    verdict = "within the SLO" if step.slo_held else "SLO broken"
    progress.result(
        f"{step.acknowledged:,} of {offered:,} acknowledged ({result['acknowledged_share']:.2%}), "
        f"p95 {step.p95_ms or 0:.0f} ms, {verdict}; {rows:,} rows; "
        f"queue peaked at {result['peak_backlog']:,.0f}, written {result['drained_after_s']}s "
        "after the burst"
    )
    return result


def _inserted(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(_INSERTED).fetchone()
    return int(row[0]) if row else 0
