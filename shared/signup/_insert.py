"""Ways to insert one batch of signups, idempotently, and a measurement to choose among them.

Every way inserts with `ON CONFLICT (email) DO NOTHING RETURNING email`, so an entry that is
delivered twice (a writer died after its commit, before its acknowledgement) is dropped by the
unique index instead of becoming a second row; the emails returned are the rows that are new.

`python -m signup._insert --database-url URL` measures them on a scratch table of that
database and prints rows per second (median of three); the writer uses the fastest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import psycopg
from psycopg import sql

Row = tuple[str, str, str, datetime]
Insert = Callable[[psycopg.AsyncConnection, str, Sequence[Row]], Awaitable[list[str]]]

_INSERT = sql.SQL("INSERT INTO {} (email, first_name, last_name, created_at, updated_at) ")
_IDEMPOTENT = sql.SQL(" ON CONFLICT (email) DO NOTHING RETURNING email")


async def unnest(conn: psycopg.AsyncConnection, table: str, rows: Sequence[Row]) -> list[str]:
    """One statement, four array parameters: one round trip on an autocommit connection, no
    temporary table, so it also works through PgBouncer in transaction mode."""
    query = sql.Composed(
        [
            _INSERT.format(sql.Identifier(table)),
            sql.SQL(
                "SELECT e, f, l, c, c FROM unnest("
                "%s::text[], %s::text[], %s::text[], %s::timestamptz[]) AS t(e, f, l, c)"
            ),
            _IDEMPOTENT,
        ]
    )
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return await _one_statement(conn, query, [list(c) for c in columns])


async def copy_staging(conn: psycopg.AsyncConnection, table: str, rows: Sequence[Row]) -> list[str]:
    """COPY into a temporary table dropped at commit, then one INSERT ... SELECT."""
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE signup_batch (email text, first_name text, last_name text,"
            " created_at timestamptz) ON COMMIT DROP"
        )
        async with conn.cursor() as cur:
            async with cur.copy("COPY signup_batch FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)
            select = sql.SQL(
                "SELECT email, first_name, last_name, created_at, created_at FROM signup_batch"
            )
            await cur.execute(
                sql.Composed([_INSERT.format(sql.Identifier(table)), select, _IDEMPOTENT])
            )
            return [r[0] for r in await cur.fetchall()]


async def values(conn: psycopg.AsyncConnection, table: str, rows: Sequence[Row]) -> list[str]:
    """A multi-row INSERT ... VALUES: 4 parameters per row (PostgreSQL allows 65,535)."""
    placeholders = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s)")] * len(rows))
    query = sql.Composed(
        [_INSERT.format(sql.Identifier(table)), sql.SQL("VALUES "), placeholders, _IDEMPOTENT]
    )
    params = [value for e, f, l, c in rows for value in (e, f, l, c, c)]  # noqa: E741
    return await _one_statement(conn, query, params)


async def _one_statement(
    conn: psycopg.AsyncConnection, query: sql.Composed, params: Sequence[object]
) -> list[str]:
    # In autocommit mode one statement is its own transaction: no BEGIN and COMMIT round trips.
    if not conn.autocommit:
        raise ValueError("insert strategies run on an autocommit connection")
    cur = await conn.execute(query, params)
    return [r[0] for r in await cur.fetchall()]


STRATEGIES: dict[str, Insert] = {
    "unnest": unnest,
    "copy_staging": copy_staging,
    "values": values,
}


async def measure(
    url: str,
    sizes: Sequence[int] = (100, 1000, 5000),
    total: int = 20_000,
    repeats: int = 3,
    prepare_threshold: int | None = None,
) -> dict[tuple[str, int], float]:
    """Rows per second of each strategy and batch size: `total` new rows into an empty
    scratch table shaped like `users`, median of `repeats` runs."""
    results: dict[tuple[str, int], float] = {}
    async with await psycopg.AsyncConnection.connect(
        url, prepare_threshold=prepare_threshold
    ) as conn:
        await conn.set_autocommit(True)
        await conn.execute("DROP TABLE IF EXISTS insert_bench")
        await conn.execute("CREATE TABLE insert_bench (LIKE users INCLUDING ALL)")
        try:
            for size in sizes:
                for name, insert in STRATEGIES.items():
                    rates = []
                    for run in range(repeats):
                        await conn.execute("TRUNCATE insert_bench")
                        now = datetime.now(UTC)
                        started = time.perf_counter()
                        for first in range(0, total, size):
                            batch = [
                                (f"u{run}-{i}@bench.example", "Ada", "Lovelace", now)
                                for i in range(first, min(first + size, total))
                            ]
                            inserted = await insert(conn, "insert_bench", batch)
                            assert len(inserted) == len(batch)
                        rates.append(total / (time.perf_counter() - started))
                    results[(name, size)] = statistics.median(rates)
        finally:
            await conn.execute("DROP TABLE IF EXISTS insert_bench")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure the writer's batch insert strategies")
    parser.add_argument("--database-url", required=True, help="a migrated signup database")
    parser.add_argument("--sizes", default="100,1000,5000", help="batch sizes, comma separated")
    parser.add_argument("--total", type=int, default=20_000, help="rows per run")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r} is not a comma-separated list of integers")
    if any(s < 1 or s > 10_000 for s in sizes) or args.total < 1:
        parser.error("batch sizes must be 1..10000 (VALUES allows 65,535 parameters)")
    results = asyncio.run(measure(args.database_url, sizes, args.total))
    print(f"{'strategy':<14}" + "".join(f"{f'batch {s}':>14}" for s in sizes))
    for name in STRATEGIES:
        print(f"{name:<14}" + "".join(f"{results[(name, s)]:>14,.0f}" for s in sizes))
    print("(rows/s, median of 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
