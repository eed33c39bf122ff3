"""Connection counts the pages state, computed from what sets them: the compose files' pool
size, workers and replicas, and PgBouncer's rendered config. Typed by hand, they went stale
when the apps went from two gunicorn workers to one ("up to 20 client connections each")."""

from __future__ import annotations

import configparser
import re

import pytest

from lab.topology import PHASES, REPO, load


def per_app(phase: str) -> int:
    env = load(phase, {}).services["app"].environment
    return int(env["SIGNUP_POOL_MAX"]) * int(env["GUNICORN_WORKERS"])


def pgbouncer_pool() -> int:
    ini = configparser.ConfigParser()
    ini.read(PHASES["phase2"] / "pgbouncer" / "pgbouncer.ini")
    return int(ini["pgbouncer"]["max_db_connections"])


def expected() -> dict[str, int]:
    replicas = load("phase2", {}).services["app"].replicas
    return {
        "phase 1's app": per_app("phase1"),
        "a phase 2 replica": per_app("phase2"),
        "phase 2's replicas": per_app("phase2") * replicas,
        "PgBouncer's server connections": pgbouncer_pool(),
    }


# (page, pattern whose first group is a count, what the count is)
CLAIMS = [
    ("docs/02-replicas.md", r"up to (\d+) client connections each", "a phase 2 replica"),
    ("docs/02-replicas.md", r"with a pool of (\d+) each", "a phase 2 replica"),
    ("docs/02-replicas.md", r"a pool of \d+ each could open (\d+)", "phase 2's replicas"),
    ("docs/02-replicas.md", r"at most (\d+) server connections", "PgBouncer's server connections"),
    (
        "docs/02-replicas.md",
        r"one of at most (\d+) real connections",
        "PgBouncer's server connections",
    ),
    ("phase2-replicas/README.md", r"≤ (\d+) client connections", "phase 2's replicas"),
    ("phase2-replicas/README.md", r"≤ (\d+) to PgBouncer", "phase 2's replicas"),
    ("phase2-replicas/README.md", r"≤ (\d+), straight to PostgreSQL", "phase 1's app"),
    ("phase2-replicas/README.md", r"≤ (\d+) server connections", "PgBouncer's server connections"),
    ("phase2-replicas/README.md", r"pool ≤ (\d+)", "a phase 2 replica"),
    ("phase1-monolith/README.md", r"sees at most (\d+) connections", "phase 1's app"),
    ("docs/01-monolith.md", r"pool of up to (\d+) connections", "phase 1's app"),
    (
        "docs/metrics.md",
        r"summed over the replica's workers \((\d+) with the defaults\)",
        "a phase 2 replica",
    ),
]


@pytest.mark.parametrize(("page", "pattern", "what"), CLAIMS)
def test_a_stated_connection_count_is_the_configured_one(
    page: str, pattern: str, what: str
) -> None:
    found = re.findall(pattern, (REPO / page).read_text())
    assert found, f"{page} no longer says {pattern!r}: update this test with the page"
    assert {int(n) for n in found} == {expected()[what]}, f"{page}: {what}"
