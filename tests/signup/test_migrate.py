"""Migrations against a real PostgreSQL: what they refuse before creating anything."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from lab.native.postgres import Cluster
from signup import migrate


def test_a_database_that_is_not_utf8_is_refused_with_its_encoding(pg_cluster: Cluster) -> None:
    """In SQL_ASCII psycopg reads text as bytes: every signup would be a row answered 500."""
    name = f"signup_ascii_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.admin_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    url = pg_cluster.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with pytest.raises(migrate.WrongEncoding, match="encoding is SQL_ASCII, not UTF8"):
            migrate.apply(url)
        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert tables.fetchone() == (0,), "nothing was created"
    finally:
        pg_cluster.drop_database(name)
