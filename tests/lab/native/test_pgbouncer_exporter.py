"""The native PgBouncer exporter's edges, and a waiting client's wait against a real
PgBouncer; its other series are checked in tests/phase2 (a running stack, and through a
PgBouncer restart)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from lab._proc import free_port
from lab.native.pgbouncer_exporter import ENV_DSN, PgBouncerCollector, main
from tests._pgbouncer import pgbouncer
from tests._probe import wait_until


def test_no_connection_string_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_DSN, raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert ENV_DSN in capsys.readouterr().err


@pytest.mark.parametrize("address", ["9127", "host:port", ":0", ":70000", "127.0.0.1:"])
def test_a_bad_listen_address_is_refused(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([f"--web.listen-address={address}", "--pgBouncer.connectionString=postgres://x"])
    assert stopped.value.code == 2
    assert "host:port" in capsys.readouterr().err


def test_an_unreachable_pgbouncer_is_up_zero_not_an_error() -> None:
    registry = CollectorRegistry()
    dsn = f"postgresql://signup:pw@127.0.0.1:{free_port()}/pgbouncer"  # nothing listens
    registry.register(PgBouncerCollector(dsn))
    text = generate_latest(registry).decode()
    assert "pgbouncer_up 0.0" in text
    assert "pgbouncer_pools_" not in text


def scraped(dsn: str, metric: str, database: str) -> float:
    registry = CollectorRegistry()
    registry.register(PgBouncerCollector(dsn))
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == metric and sample.labels.get("database") == database:
                return float(sample.value)
    raise AssertionError(f"no {metric} for {database}")


def query(url: str) -> None:
    with psycopg.connect(url, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")


def test_a_client_waiting_under_a_second_shows_its_wait(clean_users: str) -> None:
    """SHOW POOLS splits the oldest client's wait into whole seconds (`maxwait`) and the
    microseconds (`maxwait_us`); a wait of less than a second is all in the second."""
    with pgbouncer(clean_users, pool_size=1) as (_process, port):
        app = f"postgresql://anyone@127.0.0.1:{port}/signup"
        console = f"postgresql://stats@127.0.0.1:{port}/pgbouncer"
        with psycopg.connect(app, prepare_threshold=None) as holder:
            holder.execute("SELECT 1")  # in a transaction: holds the pool's one connection
            waiter = threading.Thread(target=query, args=(app,))
            waiter.start()
            try:
                wait_until(
                    lambda: scraped(
                        console, "pgbouncer_pools_client_waiting_connections", "signup"
                    ),
                    what="a client waits for the pool's connection",
                )
                waited = scraped(console, "pgbouncer_pools_client_maxwait_seconds", "signup")
            finally:
                holder.commit()
                waiter.join(timeout=30)
        assert not waiter.is_alive()
        assert waited > 0
