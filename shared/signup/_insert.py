"""Ways to insert one batch of signups, idempotently.

Every way inserts with `ON CONFLICT (email) DO NOTHING RETURNING email`, so an entry that is
delivered twice (a writer died after its commit, before its acknowledgement) is dropped by the
unique index instead of becoming a second row; the emails returned are the rows that are new.

The writer uses `unnest` below about 500 rows and `copy_staging` above; `values` (one multi-row
VALUES) is kept as the baseline the other two are measured against: `python -m
signup._insert_bench --database-url URL` measures all three on a scratch table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

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
