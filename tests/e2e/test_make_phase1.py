"""The user's path, end to end: `make phase1`, a signup, a k6 smoke run, `make down`.

The run folder and ports are the test's own (LAB_RUN_DIR, LAB_PORTS=free), so this can run
beside a lab someone started by hand.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests._make import docker_without_compose, lab_environment, make

pytestmark = pytest.mark.e2e
METRICS = (
    "signup_request_duration_seconds_bucket",
    "signup_requests_total",
    "signup_errors_total",
    "database_connections",
    "database_connections_max",
    "database_query_duration_seconds_bucket",
    "signup_validation_errors_total",
    "signup_duplicate_email_attempts_total",
    "signup_requests_in_flight",
)


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = lab_environment(tmp_path / "run")
    try:
        yield env
    finally:
        make("down", env)


def state(env: dict[str, str]) -> dict[str, object]:
    data: dict[str, object] = json.loads((Path(env["LAB_RUN_DIR"]) / "state.json").read_text())
    return data


def app_url(env: dict[str, str]) -> str:
    services = state(env)["services"]
    assert isinstance(services, list)
    return next(str(s["url"]) for s in services if s["name"] == "app")


def test_phase1_up_signup_smoke_down(lab_env: dict[str, str]) -> None:
    up = make("phase1", lab_env)
    assert up.returncode == 0, up.stderr
    assert "phase1 is up" in up.stdout
    url = app_url(lab_env)

    body = {"email": "e2e@example.com", "first_name": "End", "last_name": "ToEnd"}
    created = httpx.post(f"{url}/signup", json=body)
    assert created.status_code == 201
    assert created.json()["user"]["email"] == "e2e@example.com"
    exposition = httpx.get(f"{url}/metrics").text
    for name in METRICS:
        assert f"\n{name}" in exposition, name

    again = make("phase1", lab_env)
    assert again.returncode == 0
    assert "already running" in again.stdout

    smoke = make("load-test-smoke", {**lab_env, "BASE_URL": url, "DURATION": "5s"})
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]

    status = make("status", lab_env)
    assert "app" in status.stdout
    assert "pid" in status.stdout
    logs = make("logs", lab_env, "SERVICE=db")
    assert logs.returncode == 0
    assert "database system is ready" in logs.stdout

    services = state(lab_env)["services"]
    assert isinstance(services, list)
    pids = [int(s["pid"]) for s in services if s["pid"]]
    family = {p.pid for pid in pids for p in psutil.Process(pid).children(recursive=True)}
    family |= set(pids) | {int(str(state(lab_env)["supervisor_pid"]))}

    # On a machine with a Docker engine but no Compose v2, a plain `make down` (no RUNTIME)
    # still stops the native run: down asks both runtimes, and Docker's lack is only a line.
    shim = docker_without_compose(Path(lab_env["LAB_RUN_DIR"]).parent / "bin")
    env = {**lab_env, "RUNTIME": "", "PATH": f"{shim}:{lab_env['PATH']}"}
    down = make("down", env)
    assert down.returncode == 0, down.stderr
    assert "no Compose v2 here" in down.stdout
    assert not [pid for pid in family if psutil.pid_exists(pid)]
    assert not (Path(lab_env["LAB_RUN_DIR"]) / "state.json").exists()


def test_port_in_use_is_one_clear_line(lab_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**lab_env, "LAB_PORTS": "", "LAB_PORT_HTTP": str(port)}
        # Every other port free, so only the one we hold can collide.
        env.update({f"LAB_PORT_{name}": str(_free()) for name in _OTHER_PORTS})
        up = make("phase1", env)
    assert up.returncode != 0
    errors = [line for line in up.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: port {port} is already in use, so app cannot start "
        "(set LAB_PORT_* to move it, or stop what holds it)"
    ]
    assert not (Path(lab_env["LAB_RUN_DIR"]) / "state.json").exists()


_OTHER_PORTS = (
    "PROMETHEUS",
    "ALERTMANAGER",
    "DB",
    "PGBOUNCER",
    "REDIS",
    "CONTAINERS",
    "NGINX_STATUS",
    "POSTGRES_EXPORTER",
    "PGBOUNCER_EXPORTER",
    "REDIS_EXPORTER",
    "NGINX_EXPORTER",
)


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
