"""The native runtime's one long-lived process: starts a phase, keeps it running, stops it.

It does what Docker does for a compose file: start services in dependency order, each in its
own cgroup with the compose limits, wait for each to be healthy, restart the ones whose
restart policy says so, export per-service CPU and memory under cAdvisor's metric names, and
when asked to stop (SIGTERM to `lab supervise`, lab.cli) stop everything in reverse order so
no process is left behind. lab.native.stack runs the same Supervisor inside a test or the bench.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import psutil
from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from lab import state
from lab._proc import AlreadyRunning, ProcessExitedWithError, ServerProcess, TimeoutExpired
from lab.native import _cgroup
from lab.native._container_metrics import ContainerCollector
from lab.native.components import BUILDERS, SKIPPED
from lab.runtime import LOOPBACK, ProcSpec, RunContext
from lab.state import RunState, ServiceState
from lab.topology import Topology

log = logging.getLogger("lab.native.supervisor")


class StartError(RuntimeError):
    """A service did not come up; the message is one line a person can act on."""


def build_specs(ctx: RunContext) -> list[ProcSpec]:
    """All processes of the phase in start order (compose depends_on, then file order)."""
    topology = ctx.topology
    unknown = [n for n in topology.services if n not in BUILDERS and n not in SKIPPED]
    if unknown:
        raise StartError(f"no native equivalent for compose services: {', '.join(unknown)}")
    specs: list[ProcSpec] = []
    for name in start_order(topology):
        if name in BUILDERS:
            specs.extend(BUILDERS[name](ctx, topology[name]))
    return specs


def start_order(topology: Topology) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise StartError(f"depends_on cycle through {name}")
        visiting.add(name)
        for dep in topology[name].depends_on:
            if dep in topology.services:
                visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in topology.services:
        visit(name)
    return order


def restart_delay(restarts: int) -> float:
    """compose's restart backoff: 0.1 s doubling with each restart, capped (here at 10 s)."""
    return min(10.0, 0.1 * 2.0**restarts)


@dataclass
class Running:
    spec: ProcSpec
    process: ServerProcess | None = None
    cgroup: _cgroup.Cgroup | None = None
    restarts: int = 0
    exit_code: int | None = None
    next_restart: float = 0.0


class Supervisor:
    def __init__(self, ctx: RunContext, run_id: str, *, weight: int | None = None) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.cgroups_unavailable = _cgroup.available()
        self.cgroup_root = f"signup-lab/{run_id}"
        # The whole run's share of the machine under contention (cgroup cpu.weight; the bench
        # reserves one, so a busy machine slows its services less than their quotas do).
        self.weight = weight
        self.running: list[Running] = []
        self._stop = threading.Event()
        self._metrics_server: WSGIServer | None = None

    def start_all(self) -> None:
        specs = build_specs(self.ctx)
        if self.weight is not None and not self.cgroups_unavailable:
            _cgroup.Cgroup(self.cgroup_root).create(None, None, weight=self.weight)
        self._serve_container_metrics()
        for spec in specs:
            if self._stop.is_set():
                raise StartError("interrupted while starting")
            entry = Running(spec)
            self.running.append(entry)
            if spec.prepare is not None:
                spec.prepare()
            if spec.oneshot:
                self._run_once(entry)
            else:
                self._start(entry)
            if spec.after_start is not None:
                spec.after_start()
            log.info("%s ready%s", spec.name, f" at {spec.url}" if spec.url else "")

    def _command(self, entry: Running) -> list[str]:
        spec = entry.spec
        if self.cgroups_unavailable:
            return spec.command
        if entry.cgroup is None:
            entry.cgroup = _cgroup.Cgroup(
                f"{self.cgroup_root}/{spec.name}", period=self.ctx.cpu_period_us
            )
            entry.cgroup.create(spec.cpus, spec.memory)
        return entry.cgroup.join_command(spec.command)

    def _run_once(self, entry: Running) -> None:
        spec = entry.spec
        logfile = self.ctx.log(spec.name)
        with logfile.open("a") as out:
            result = subprocess.run(
                self._command(entry),
                env=spec.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=spec.timeout,
                check=False,
            )
        entry.exit_code = result.returncode
        if result.returncode != 0:
            raise StartError(f"{spec.name} failed (exit {result.returncode}): {_tail(logfile)}")

    def _start(self, entry: Running) -> None:
        spec = entry.spec
        logfile = self.ctx.log(spec.name)
        process = ServerProcess(
            self._command(entry),
            check=spec.check,
            port=spec.port,
            log_file=logfile,
            env=spec.env,
            timeout=spec.timeout,
            stop_signal=spec.stop_signal,
        )
        try:
            process.start()
        except AlreadyRunning:
            raise StartError(
                f"port {spec.port} is already in use, so {spec.name} cannot start "
                f"(set LAB_PORT_* to move it, or stop what holds it)"
            ) from None
        except ProcessExitedWithError as exc:
            raise StartError(f"{spec.name} exited at start ({exc}): {_tail(logfile)}") from None
        except TimeoutExpired:
            process.stop()
            raise StartError(
                f"{spec.name} not ready after {spec.timeout:.0f}s: {_tail(logfile)}"
            ) from None
        entry.process = process
        entry.exit_code = None

    def watch(self, state_file: Path) -> None:
        """Restart what exits (if its policy says so) until asked to stop."""
        while not self._stop.wait(0.5):
            changed = False
            for entry in self.running:
                process = entry.process
                if process is None or entry.spec.oneshot:
                    continue
                # Once reaped, mirakuru forgets the process (exit_code() is None again), so
                # an exit is remembered in entry.exit_code until the restart succeeds.
                if entry.exit_code is None:
                    code = process.exit_code()
                    if code is None:
                        continue
                    entry.exit_code = code
                    log.warning("%s exited with %s", entry.spec.name, code)
                    # Reap it (and any children left in its group); its own exit code is
                    # expected, or mirakuru would raise for a SIGKILL (-9 is not -SIGTERM).
                    process.stop(expected_returncode=code)
                    entry.next_restart = time.monotonic() + restart_delay(entry.restarts)
                    changed = True
                if entry.spec.restart and time.monotonic() >= entry.next_restart:
                    entry.restarts += 1
                    try:
                        self._start(entry)
                        log.info("%s restarted (%d)", entry.spec.name, entry.restarts)
                    except StartError as exc:
                        log.error("restart failed: %s", exc)
                        entry.next_restart = time.monotonic() + restart_delay(entry.restarts)
                    changed = True
            if changed:
                state.write(state_file, self.state())

    def request_stop(self) -> None:
        self._stop.set()

    def stop_all(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        for entry in reversed(self.running):
            if entry.process is not None:
                try:
                    entry.process.stop()
                except Exception:  # a stop failure must not leave the others running
                    log.exception("stopping %s", entry.spec.name)
                    entry.process.kill()
        for entry in self.running:
            if entry.cgroup is not None:
                entry.cgroup.destroy()
        while self.ctx.on_stop:
            undo = self.ctx.on_stop.pop()
            try:
                undo()
            except Exception:  # one failure must not keep the rest from being undone
                log.exception("undoing %s", undo)
        if not self.cgroups_unavailable:
            for path in _cgroup.Cgroup(self.cgroup_root).dirs:
                _cgroup.remove_tree(path)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # the shared signup-lab folder, once the last run ends

    def state(self) -> RunState:
        return RunState(
            phase=self.ctx.phase,
            supervisor_pid=os.getpid(),
            supervisor_created=psutil.Process().create_time(),
            run_id=self.run_id,
            cgroups=self.cgroups_unavailable or "per-service limits applied",
            services=tuple(
                ServiceState(
                    name=e.spec.name,
                    service=e.spec.service,
                    pid=e.process.pid if e.process else None,
                    port=e.spec.port,
                    url=e.spec.url,
                    oneshot=e.spec.oneshot,
                    exit_code=e.exit_code,
                    restarts=e.restarts,
                    cpus=e.spec.cpus,
                    memory=e.spec.memory,
                    cgroup=e.cgroup.relative if e.cgroup else None,
                    log=str(self.ctx.log(e.spec.name)),
                )
                for e in self.running
            ),
            skipped={n: r for n, r in SKIPPED.items() if n in self.ctx.topology.services},
            database_url=self.ctx.database_url(),
            containers_url=f"http://{LOOPBACK}:{self.ctx.ports.containers}",
        )

    def _serve_container_metrics(self) -> None:
        registry = CollectorRegistry()
        registry.register(ContainerCollector(self.ctx.cpu_period_us, lambda: self.running))
        server, _thread = start_http_server(
            self.ctx.ports.containers, addr=LOOPBACK, registry=registry
        )
        self._metrics_server = server
        self.ctx.members["cadvisor"] = [f"{LOOPBACK}:{self.ctx.ports.containers}"]


def _tail(logfile: Path, lines: int = 3) -> str:
    try:
        text = logfile.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"see {logfile}"
    last = " | ".join(line.strip() for line in text[-lines:] if line.strip())
    return f"{last} (log: {logfile})" if last else f"see {logfile}"
