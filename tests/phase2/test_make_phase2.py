"""The user's path for phase 2: `make phase2` natively, a signup through nginx, `make down`.

Its own run folder and free ports (LAB_RUN_DIR, LAB_PORTS=free), so it can run beside a lab
someone started by hand; REPLICAS=2 shows the variable reaching the native runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests._make import lab_environment, make

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = lab_environment(tmp_path / "run", REPLICAS="2")
    try:
        yield env
    finally:
        make("down", env)


def test_make_phase2_serves_through_nginx(lab_env: dict[str, str]) -> None:
    up = make("phase2", lab_env)
    assert up.returncode == 0, up.stderr
    state = json.loads((Path(lab_env["LAB_RUN_DIR"]) / "state.json").read_text())
    services = {s["name"]: s for s in state["services"]}
    assert {"nginx", "pgbouncer", "app-1", "app-2", "nginx-exporter", "pgbouncer-exporter"} <= set(
        services
    )
    assert "app-3" not in services

    body = {"email": "make@example.com", "first_name": "Make", "last_name": "Phase"}
    created = httpx.post(f"{services['nginx']['url']}/signup", json=body)
    assert created.status_code == 201
    assert created.json()["user"]["email"] == "make@example.com"

    pids = [s["pid"] for s in services.values() if s["pid"]]
    down = make("down", lab_env)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
