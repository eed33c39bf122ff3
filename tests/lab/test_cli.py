"""`lab down`'s native stop path: the supervisor is signalled only when it is the process the
state names, and what it started is killed only when it is older than the state file (a pid
reused since belongs to someone else)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lab import cli, state
from lab.cli import stop_native
from lab.state import RunState, ServiceState


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def sleeper(started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["sleep", "60"])
    started.append(process)
    return process


def write(run_dir: Path, supervisor: int, created: float, services: list[int]) -> None:
    entries = tuple(ServiceState(f"s{pid}", "app", pid, None, None) for pid in services)
    state.write(state.path(run_dir), RunState("phase1", supervisor, created, "r", "c", entries))


def test_nothing_to_stop(tmp_path: Path) -> None:
    assert stop_native(tmp_path) == "nothing is running"


def test_the_supervisor_is_stopped_by_sigterm(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    supervisor = sleeper(sleepers)
    write(tmp_path, supervisor.pid, psutil.Process(supervisor.pid).create_time(), [])
    assert stop_native(tmp_path, timeout=10) == "stopped"
    assert supervisor.poll() is not None, "stopped (and reaped by the wait)"
    assert not state.path(tmp_path).exists()


def test_a_reused_supervisor_pid_is_left_alone(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    stranger = sleeper(sleepers)
    write(tmp_path, stranger.pid, psutil.Process(stranger.pid).create_time() - 3600, [])
    assert stop_native(tmp_path, timeout=1) == "stopped"
    assert stranger.poll() is None, "not the supervisor: never signalled"
    assert not state.path(tmp_path).exists()


def test_leftovers_older_than_the_state_are_killed_newer_ones_are_not(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    leftover = sleeper(sleepers)
    time.sleep(0.6)  # `later` starts more than a second after the state file's time below
    later = sleeper(sleepers)
    write(tmp_path, 0, 0.0, [leftover.pid, later.pid])
    written = psutil.Process(leftover.pid).create_time() - 0.5
    os.utime(state.path(tmp_path), (written, written))
    assert stop_native(tmp_path) == "stopped (killed 1 leftover processes)"
    assert leftover.wait(timeout=5) == -9
    assert later.poll() is None, "started after the state was written: someone else's"


def test_help_lists_the_commands_but_not_the_supervisors_own_entry() -> None:
    text = cli.parser().format_help()
    listed = {line.split()[0] for line in text.splitlines() if line.startswith("    ")}
    assert {"up", "down", "clean", "status", "logs"} <= listed
    assert "supervise" not in listed
    assert "SUPPRESS" not in text
