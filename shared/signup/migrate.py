"""Apply the SQL migrations once, in order, before any app process starts.

`python -m signup.migrate` (or `signup-migrate`). Each file runs in its own transaction and is
recorded in schema_migrations, under an advisory lock so two starters cannot race. Connect
directly to PostgreSQL, not through PgBouncer: a session-level lock needs a session.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from importlib import resources

import psycopg

from signup.config import Settings, SettingsError

log = logging.getLogger("signup.migrate")
LOCK_ID = 7_240_001


def migrations() -> list[tuple[str, str]]:
    folder = resources.files("signup") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def connect(url: str, wait: float) -> psycopg.Connection:
    deadline = time.monotonic() + wait
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("database not ready yet (%s); retrying", str(exc).strip().splitlines()[0])
            time.sleep(0.5)


class WrongEncoding(psycopg.Error):
    """The database does not store UTF-8: refused before anything is created in it."""


def apply(url: str, wait: float = 0.0) -> list[str]:
    """Apply what is missing; return the versions applied now."""
    applied_now: list[str] = []
    with connect(url, wait) as conn:
        # A database created in a C locale is SQL_ASCII: psycopg then reads text columns as
        # bytes, and every signup would be inserted and answered 500. Refuse it here, once.
        row = conn.execute("SHOW server_encoding").fetchone()
        value = row[0] if row else b"?"
        encoding = value.decode() if isinstance(value, bytes) else str(value)  # bytes: as above
        if encoding != "UTF8":
            raise WrongEncoding(
                f"the database's encoding is {encoding}, not UTF8: "
                "create it with ENCODING 'UTF8' (initdb --encoding=UTF8)"
            )
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in migrations():
            if version in done:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
            log.info("applied %s", version)
    return applied_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the database (default 30)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if not settings.database_url:
            raise SettingsError("SIGNUP_DATABASE_URL is required to migrate")
    except SettingsError as exc:
        print(f"signup-migrate: {exc}", file=sys.stderr)
        return 2
    try:
        applied = apply(settings.database_url, wait=args.wait)
    except psycopg.Error as exc:
        print(f"signup-migrate: {str(exc).strip()}", file=sys.stderr)
        return 1
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
