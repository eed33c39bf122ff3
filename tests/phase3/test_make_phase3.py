"""The user's path for phase 3: `make phase3` natively, a signup through nginx that becomes a
row, a writer SIGKILLed and brought back by the detached supervisor, `make down`.

Its own run folder and free ports (LAB_RUN_DIR, LAB_PORTS=free), so it can run beside a lab
someone started by hand.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests._make import lab_environment, make
from tests._probe import wait_until
from tests.conftest import server_folder

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab_env() -> Iterator[dict[str, str]]:
    with server_folder("make-phase3-") as folder:
        env = lab_environment(folder / "run", REPLICAS="2", WRITER_REPLICAS="2")
        try:
            yield env
        finally:
            make("down", env)


def services(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    state = json.loads((Path(env["LAB_RUN_DIR"]) / "state.json").read_text())
    return {s["name"]: s for s in state["services"]}


def test_make_phase3_accepts_writes_and_restarts_a_killed_writer(
    lab_env: dict[str, str],
) -> None:
    up = make("phase3", lab_env)
    assert up.returncode == 0, up.stderr
    running = services(lab_env)
    assert {"redis", "redis-exporter", "writer-1", "writer-2", "app-1", "app-2"} <= set(running)
    assert "app-3" not in running
    url = running["nginx"]["url"]

    body = {"email": "make3@example.com", "first_name": "Make", "last_name": "Three"}
    accepted = httpx.post(f"{url}/signup", json=body, timeout=15)
    assert accepted.status_code == 202
    assert accepted.json()["message"] == "signup accepted"

    def status() -> object:
        found = httpx.get(f"{url}/signup/status", params={"email": body["email"]}, timeout=15)
        return found.json().get("status")

    wait_until(lambda: status() == "recorded", timeout=30, what="the writer recorded it")

    victim = running["writer-1"]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: (
            services(lab_env)["writer-1"]["pid"] not in (None, victim)
            and services(lab_env)["writer-1"]["restarts"] == 1
        ),
        timeout=60,
        what="the supervisor restarted writer-1",
    )

    pids = [s["pid"] for s in services(lab_env).values() if s["pid"]]
    down = make("down", lab_env)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
