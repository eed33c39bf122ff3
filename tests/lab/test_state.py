"""The run state file: written and read back the same, and trusted only while the supervisor
it names is the very process that wrote it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil

from lab import state
from lab.state import RunState, ServiceState


def a_state(pid: int, created: float) -> RunState:
    return RunState(
        phase="phase2",
        supervisor_pid=pid,
        supervisor_created=created,
        run_id="phase2-1",
        cgroups="per-service limits applied",
        services=(
            ServiceState("db", "db", 11, 15432, "postgresql://signup:***@127.0.0.1:15432/s"),
            ServiceState("migrate", "migrate", None, None, None, oneshot=True, exit_code=0),
            ServiceState("app-1", "app", 12, 18001, "http://127.0.0.1:18001"),
            ServiceState("app-2", "app", 13, 18002, "http://127.0.0.1:18002"),
            ServiceState("nginx", "nginx", 14, 8080, "http://127.0.0.1:8080"),
        ),
        skipped={"grafana": "no package"},
        database_url="postgresql://signup:secret@127.0.0.1:15432/signup",
    )


def this_process() -> RunState:
    return a_state(os.getpid(), psutil.Process().create_time())


def test_written_and_read_back_the_same(tmp_path: Path) -> None:
    written = this_process()
    state.write(state.path(tmp_path), written)
    assert state.read(tmp_path) == written


def test_a_service_url_is_its_first_replica_and_the_entry_is_nginx_before_the_app() -> None:
    running = this_process()
    assert running.url("app") == "http://127.0.0.1:18001"
    assert running.url("redis") is None
    assert running.entry_url == "http://127.0.0.1:8080"
    phase1 = RunState("phase1", 1, 0.0, "r", "c", services=running.services[:3])
    assert phase1.entry_url == "http://127.0.0.1:18001"


def test_pids_are_the_long_running_processes() -> None:
    assert this_process().pids() == {"db": 11, "app-1": 12, "app-2": 13, "nginx": 14}


def test_no_state_file_or_a_broken_one_is_nothing_running(tmp_path: Path) -> None:
    assert state.read(tmp_path) is None
    state.path(tmp_path).write_text("{not json")
    assert state.read(tmp_path) is None


def test_a_dead_supervisor_is_nothing_running(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    state.write(state.path(tmp_path), a_state(gone.pid, psutil.Process().create_time()))
    assert state.read(tmp_path) is None
    assert state.load(state.path(tmp_path)) is not None, "down still reads it, to clean up"


def test_a_pid_reused_by_a_later_process_is_not_the_supervisor(tmp_path: Path) -> None:
    created = psutil.Process().create_time()
    state.write(state.path(tmp_path), a_state(os.getpid(), created - 3600))
    assert state.read(tmp_path) is None
