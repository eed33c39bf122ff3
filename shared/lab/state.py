"""The native run's state file (.run/state.json): what the supervisor started, and where.

The detached supervisor writes it; `lab status` and `lab down`, the load tests and the report
read it. Everything that reads it goes through `RunState`, so the file's format is known here
only and a reader asks for a service's URL instead of walking the raw JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from lab.topology import REPO

RUN_DIR = Path(os.environ.get("LAB_RUN_DIR", REPO / ".run"))


@dataclass(frozen=True)
class ServiceState:
    """One native process (one replica) of the run."""

    name: str
    service: str
    pid: int | None
    port: int | None
    url: str | None
    oneshot: bool = False
    exit_code: int | None = None
    restarts: int = 0
    cpus: float | None = None
    memory: int | None = None
    cgroup: str | None = None
    log: str = ""


@dataclass(frozen=True)
class RunState:
    phase: str
    supervisor_pid: int
    # With the pid, tells the supervisor from a later process that reuses the number.
    supervisor_created: float
    run_id: str
    cgroups: str
    services: tuple[ServiceState, ...] = ()
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    # The direct (not pooled) URL of the phase's database, as its migrate service uses it.
    database_url: str | None = None
    runtime: str = "native"
    # Where the per-service cgroup counters answer, in cAdvisor's names: the supervisor's
    # endpoint natively, cAdvisor under Docker (None: nobody exports them).
    containers_url: str | None = None

    def url(self, service: str) -> str | None:
        """Where the first replica of a compose service answers (None: not running here)."""
        return next((s.url for s in self.services if s.service == service and s.url), None)

    @property
    def entry_url(self) -> str | None:
        """The public entry: nginx in phases 2 and 3, the app itself in phase 1."""
        return self.url("nginx") or self.url("app")

    def pids(self) -> dict[str, int]:
        """Every long-running process: name -> pid."""
        return {s.name: s.pid for s in self.services if not s.oneshot and s.pid}

    def supervisor_alive(self) -> bool:
        """The supervisor is alive and is the same process, not a later one that got its pid
        (after a reboot): it must have been created when the state says."""
        try:
            created = psutil.Process(self.supervisor_pid).create_time()
        except (psutil.Error, TypeError, ValueError):
            return False
        return abs(created - self.supervisor_created) < 1.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        services = tuple(ServiceState(**s) for s in data.get("services") or ())
        return cls(**{**data, "services": services})


def path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def write(file: Path, state: RunState) -> None:
    """Atomically, so a reader never sees half a file."""
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.as_dict(), indent=2))
    tmp.replace(file)


def load(file: Path) -> RunState | None:
    """The state as written, whether its supervisor still runs or not (None: no state)."""
    try:
        return RunState.from_dict(json.loads(file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read(run_dir: Path) -> RunState | None:
    """The running phase's state: None unless its supervisor is alive."""
    state = load(path(run_dir))
    return state if state is not None and state.supervisor_alive() else None
