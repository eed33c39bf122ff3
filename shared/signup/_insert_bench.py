"""`python -m signup._insert_bench --database-url URL`: rows per second of each insert strategy
(signup._insert) and batch size, on a scratch table shaped like `users`, median of three."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from signup._insert import STRATEGIES


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
