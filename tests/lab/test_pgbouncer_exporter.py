"""The native PgBouncer exporter's edges; its series against a real PgBouncer are checked in
tests/phase2 (a running stack, and through a PgBouncer restart)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from lab._proc import free_port
from lab.pgbouncer_exporter import ENV_DSN, PgBouncerCollector, main


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
