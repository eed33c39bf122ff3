"""PostgreSQL's own ceilings, measured on a phase's database under its limits.

- single-row inserts: pgbench (the server package's own) with a custom script that inserts
  one user per transaction, as phases 1 and 2 do per signup;
- COPY: psycopg COPY of batches into a staging table, alone and then through it into users
  (`INSERT ... SELECT ... ON CONFLICT DO NOTHING`), as phase 3's writer does.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lab.bench._plan import Plan
from lab.bench._report import median
from lab.bench._steps import Runner
from lab.bench._targets import Bench, Inside, Measurement
from lab.native.postgres import bindir
from lab.native.stack import Stack
from lab.topology import load

# One signup per transaction, with the app's RETURNING. txid_current() is unique per
# transaction, so every email is new (a repeat would be a unique violation, not an insert).
PGBENCH_SCRIPT = """\
INSERT INTO users (email, first_name, last_name)
VALUES ('pgbench-' || txid_current() || '@signup-lab.test', 'Pg', 'Bench')
RETURNING id, created_at;
"""
_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


class PgbenchFailed(RuntimeError):
    pass


def pgbench(url: str, work: Path, *, clients: int, seconds: int) -> float:
    """Single-row inserts per second (pgbench's tps: one insert per transaction)."""
    info = conninfo_to_dict(url)
    script = work / "insert_user.sql"
    script.write_text(PGBENCH_SCRIPT)
    command = [
        str(bindir() / "pgbench"),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--time={seconds}",
        f"--file={script}",
        f"--host={info['host']}",
        f"--port={info['port']}",
        f"--username={info['user']}",
        str(info["dbname"]),
    ]
    env = {"PGPASSWORD": str(info.get("password", "")), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    match = _TPS.search(done.stdout)
    if done.returncode != 0 or not match:
        raise PgbenchFailed(f"pgbench exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return float(match.group(1))


def _batch(tag: str, start: int, size: int) -> str:
    # COPY's text format built in one go: the client must not be what limits the rate.
    return "".join(f"copy-{tag}-{i}@signup-lab.test\tCo\tPy\n" for i in range(start, start + size))


def copy_rates(url: str, *, batch: int, seconds: float) -> tuple[float, float]:
    """(rows/s COPYed into a staging table, rows/s COPYed through it into users)."""
    tag = secrets.token_hex(3)
    staging_only = _copy_loop(url, tag + "s", batch, seconds, into_users=False)
    through = _copy_loop(url, tag + "u", batch, seconds, into_users=True)
    return staging_only, through


def _copy_loop(url: str, tag: str, batch: int, seconds: float, *, into_users: bool) -> float:
    rows = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE signup_staging (email text, first_name text,"
                    " last_name text) ON COMMIT DROP"
                )
                with cur.copy("COPY signup_staging FROM STDIN") as copy:
                    copy.write(_batch(tag, rows, batch))
                if into_users:
                    cur.execute(
                        "INSERT INTO users (email, first_name, last_name)"
                        " SELECT email, first_name, last_name FROM signup_staging"
                        " ON CONFLICT (email) DO NOTHING"
                    )
            rows += batch
        elapsed = time.perf_counter() - started
    return rows / elapsed


def ceilings(plan: Plan, bench: Bench, phase: str) -> Inside:
    """What `measure` runs on `phase`'s stack once the phase is measured: its database, under
    its compose limits, is the one measured."""

    def inside(stack: Stack, _runner: Runner, _m: Measurement) -> dict[str, Any]:
        url, progress = stack.database_url(), bench.progress
        inserts, staging, through = [], [], []
        for i in range(plan.runs):
            progress.step(
                f"PostgreSQL ceiling {i + 1}/{plan.runs}: pgbench single-row inserts into users, "
                f"{plan.pgbench_clients} clients for {plan.pgbench_seconds}s"
            )
            inserts.append(
                pgbench(url, bench.work, clients=plan.pgbench_clients, seconds=plan.pgbench_seconds)
            )
            progress.result(f"{inserts[-1]:,.0f} inserts/s")
            progress.step(
                f"PostgreSQL ceiling {i + 1}/{plan.runs}: COPY batches of {plan.copy_batch} "
                f"into a staging table, then through it into users ({plan.copy_seconds:g}s each)"
            )
            a, b = copy_rates(url, batch=plan.copy_batch, seconds=plan.copy_seconds)
            staging.append(a)
            through.append(b)
            progress.result(f"{a:,.0f} rows/s into staging, {b:,.0f} rows/s into users")
        db = load(phase).services["db"]
        return {
            "postgres": {
                "insert_rows_per_s": median(inserts),
                "insert_runs": inserts,
                "clients": plan.pgbench_clients,
                "copy_staging_rows_per_s": median(staging),
                "copy_into_users_rows_per_s": median(through),
                "copy_runs": {"staging": staging, "into_users": through},
                "batch": plan.copy_batch,
                "db_cpus": db.cpus,
                "db_memory_bytes": db.memory,
                "measured_on": f"{phase}'s database, under its compose limits",
            }
        }

    return inside
