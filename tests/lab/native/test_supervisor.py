"""The supervisor's own rules, without a phase: the start order and its cycle error, compose's
restart backoff, and the watch loop bringing back a process that died."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from lab import state
from lab.native.supervisor import Running, StartError, Supervisor, restart_delay, start_order
from lab.runtime import Ports, ProcSpec, RunContext
from lab.topology import Service, Topology


def topology(**depends_on: tuple[str, ...]) -> Topology:
    services = {name: Service(name, depends_on=deps) for name, deps in depends_on.items()}
    return Topology("phase1", Path("compose.yaml"), services)


def test_dependencies_start_first_then_file_order() -> None:
    order = start_order(topology(app=("migrate",), db=(), migrate=("db",), nginx=("app",)))
    assert order == ["db", "migrate", "app", "nginx"]


def test_a_dependency_outside_the_phase_is_ignored() -> None:
    assert start_order(topology(app=("grafana",))) == ["app"]


def test_a_cycle_is_a_start_error_naming_a_service_on_it() -> None:
    with pytest.raises(StartError, match=r"depends_on cycle through (a|b)"):
        start_order(topology(a=("b",), b=("a",)))


def test_restart_backoff_doubles_from_a_tenth_of_a_second_up_to_ten() -> None:
    assert [restart_delay(n) for n in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert restart_delay(7) == 10.0
    assert restart_delay(50) == 10.0


def test_watch_restarts_a_killed_process_that_may_restart(tmp_path: Path) -> None:
    ctx = RunContext(topology(), tmp_path, Ports())
    supervisor = Supervisor(ctx, "test")
    supervisor.cgroups_unavailable = "not in this test"
    spec = ProcSpec("sleeper", "sleeper", ["sleep", "60"], check=lambda: True, port=None)
    spec.restart = True
    entry = Running(spec)
    supervisor.running.append(entry)
    supervisor._start(entry)
    assert entry.process is not None
    first = entry.process.pid
    assert first is not None
    watcher = threading.Thread(target=supervisor.watch, args=(state.path(tmp_path),))
    watcher.start()
    try:
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            written = state.load(state.path(tmp_path))
            if written is not None and written.services[0].restarts:
                break
            time.sleep(0.05)
        assert entry.restarts == 1
        assert entry.process.pid not in (None, first)
        assert entry.exit_code is None
        assert written is not None, "every change is written to the state file"
        assert written.services[0].restarts == 1
    finally:
        supervisor.request_stop()
        watcher.join()
        supervisor.stop_all()
