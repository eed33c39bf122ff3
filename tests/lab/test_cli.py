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


def logs_of(run_dir: Path, names: list[str], service: str = "app") -> None:
    """A running phase (the state's supervisor is this test process) with these replicas."""
    folder = run_dir / "logs"
    folder.mkdir(parents=True)
    entries = []
    for name in names:
        (folder / f"{name}.log").write_text(f"line of {name}\n")
        entries.append(
            ServiceState(name, service, None, None, None, log=str(folder / f"{name}.log"))
        )
    me = psutil.Process()
    run = RunState("phase3", me.pid, me.create_time(), "r", "c", tuple(entries))
    state.write(state.path(run_dir), run)


def test_logs_read_the_running_phase_and_name_its_replicas(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs_of(tmp_path, ["app-1", "app-2"])
    (tmp_path / "logs" / "app.log").write_text("phase 1's old app\n")  # an earlier run's
    assert cli.main(["--runtime", "native", "--run-dir", str(tmp_path), "logs", "app"]) == 0
    out = capfd.readouterr().out
    assert "app: 2 replicas, app-1, app-2" in out
    assert "line of app-1" in out
    assert "line of app-2" in out
    assert "phase 1's old app" not in out


def test_logs_of_a_service_the_phase_lacks_say_which_it_has(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs_of(tmp_path, ["app-1"])
    assert cli.main(["--runtime", "native", "--run-dir", str(tmp_path), "logs", "redis"]) == 1
    assert "phase3 has no service 'redis' (it has app)" in capfd.readouterr().err


def test_logs_with_nothing_running_say_they_are_old(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("an earlier run\n")
    assert cli.main(["--runtime", "native", "--run-dir", str(tmp_path), "logs", "app"]) == 0
    out = capfd.readouterr().out
    assert "nothing is running natively: the logs of earlier runs" in out
    assert "an earlier run" in out
