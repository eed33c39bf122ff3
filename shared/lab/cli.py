"""`python -m lab`: the commands behind `make phase1/2/3`, `down`, `clean`, `status`, `logs`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from lab import _show, docker, state
from lab.native import _cgroup, _hosts
from lab.native.components import redis_cluster
from lab.runtime import Ports, RunContext
from lab.state import RUN_DIR, RunState
from lab.topology import PHASES, TopologyError, load


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return result.returncode == 0


def choose_runtime(requested: str) -> str:
    if requested not in ("auto", "docker", "native"):
        raise SystemExit(f"RUNTIME={requested!r} must be docker, native or empty")
    if requested != "auto":
        return requested
    return "docker" if docker_available() else "native"


def cmd_up(args: argparse.Namespace) -> int:
    runtime = choose_runtime(args.runtime)
    if runtime == "docker":
        compose = docker.compose_file(args.phase)
        print(f"{args.phase}: Docker engine found, starting with docker compose ({compose})")
        return docker.script("up", str(compose.parent))
    print(f"{args.phase}: no Docker engine here (or RUNTIME=native): native runtime")
    running = state.read(args.run_dir)
    if running is not None:
        if running.phase == args.phase:
            print(f"{args.phase} is already running (supervisor pid {running.supervisor_pid})")
            _show.services(running)
            return 0
        print(f"error: {running.phase} is running; `make down` first", file=sys.stderr)
        return 1
    try:
        load(args.phase)  # fail on a bad compose file or variable before forking anything
        Ports.from_env()
        _cgroup.period_us()
    except (TopologyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.run_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    supervisor_log = args.run_dir / "logs"
    supervisor_log.mkdir(exist_ok=True)
    with (supervisor_log / "supervisor.log").open("a") as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab",
                "--run-dir",
                str(args.run_dir),
                "supervise",
                args.phase,
                "--notify-fd",
                str(write_fd),
            ],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command, as `docker compose up -d` does
        )
    os.close(write_fd)
    print(f"starting {args.phase} (logs in {supervisor_log}) ...", flush=True)
    with os.fdopen(read_fd) as pipe:
        line = pipe.readline()  # blocks until the supervisor reports ready or failed
    if not line:
        child.wait(timeout=30)
        print(
            f"error: supervisor exited ({child.returncode}); see {supervisor_log}", file=sys.stderr
        )
        return 1
    message = json.loads(line)
    if not message["ok"]:
        child.wait(timeout=60)
        print(f"error: {message['error']}", file=sys.stderr)
        return 1
    print(f"{args.phase} is up:")
    _show.services(RunState.from_dict(message["state"]))
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    """The detached process `up` starts: says through the pipe whether the phase came up (the
    line `up` waits for), then keeps it running until SIGTERM (`down`)."""
    from lab.native.supervisor import Supervisor, log

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx = RunContext(
        load(args.phase), args.run_dir, Ports.from_env(), cpu_period_us=_cgroup.period_us()
    )
    state_file = state.path(args.run_dir)
    supervisor = Supervisor(ctx, f"{ctx.phase}-{os.getpid()}")

    def on_signal(signum: int, frame: object) -> None:
        supervisor.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        supervisor.start_all()
    except Exception as exc:
        log.error("start failed: %s", exc)
        _notify(args.notify_fd, {"ok": False, "error": str(exc)})
        supervisor.stop_all()
        return 1
    running = supervisor.state()
    state.write(state_file, running)
    _notify(args.notify_fd, {"ok": True, "state": running.as_dict()})
    try:
        supervisor.watch(state_file)
    finally:
        supervisor.stop_all()
        state_file.unlink(missing_ok=True)
    return 0


def _notify(fd: int | None, message: dict[str, object]) -> None:
    if fd is None:
        return
    with os.fdopen(fd, "w") as pipe:
        pipe.write(json.dumps(message) + "\n")


def cmd_down(args: argparse.Namespace) -> int:
    if choose_runtime(args.runtime) == "docker":
        return docker.main(["down"])
    print(stop_native(args.run_dir))
    # Phase 4's hosts of a run that is gone (its supervisor crashed or was killed): nothing
    # that namespaces, links or a bridge stand for runs any more.
    if _hosts.available() is None:
        removed = _hosts.remove_stale()
        if removed:
            print(f"removed the network namespaces and links of stopped runs: {' '.join(removed)}")
    return 0


def stop_native(run_dir: Path, *, timeout: float = 90.0) -> str:
    """Stop the native run: its supervisor by SIGTERM (only if it is still the process the
    state names), then whatever the state names that is still alive. Returns what happened."""
    file = state.path(run_dir)
    running = state.load(file)
    if running is None:
        return "nothing is running"
    try:
        # Read before the supervisor stops: it removes the state file on its way out.
        written = file.stat().st_mtime
    except OSError:
        return "nothing is running"
    if running.supervisor_alive():
        print(f"stopping {running.phase} ...", flush=True)
        os.kill(running.supervisor_pid, signal.SIGTERM)
        try:
            psutil.Process(running.supervisor_pid).wait(timeout=timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            print(
                f"supervisor did not stop in {timeout:.0f} s; killing what it started",
                file=sys.stderr,
            )
    # Whatever happened to the supervisor, nothing it started may survive `make down`.
    leftovers = _kill_leftovers(running, written=written)
    file.unlink(missing_ok=True)
    return "stopped" + (f" (killed {leftovers} leftover processes)" if leftovers else "")


def _kill_leftovers(running: RunState, written: float) -> int:
    """Kill what the state names, but only processes older than the state file: a pid that
    was reused since (after a reboot) belongs to someone else."""
    killed = 0
    for svc in running.services:
        if not svc.pid or not psutil.pid_exists(svc.pid):
            continue
        try:
            proc = psutil.Process(svc.pid)
            if proc.create_time() > written + 1:
                continue
            for p in [*proc.children(recursive=True), proc]:
                p.kill()
                killed += 1
        except psutil.Error:
            continue
    return killed


def cmd_clean(args: argparse.Namespace) -> int:
    if choose_runtime(args.runtime) == "docker":  # the data is in the projects' volumes
        return docker.main(["down", "--volumes"])
    cmd_down(args)
    if args.run_dir.exists():
        shutil.rmtree(args.run_dir)
        print(f"removed {args.run_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if choose_runtime(args.runtime) == "docker":
        return docker.main(["status"])
    running = state.read(args.run_dir)
    if running is None:
        print("nothing is running (native runtime)")
        return 0
    print(f"{running.phase} (native, supervisor pid {running.supervisor_pid}):")
    _show.services(running)
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    """Phase 4: add a spare primary and its replica to the running cluster, and rebalance."""
    if choose_runtime(args.runtime) == "docker":
        return docker.main(["grow"])
    running = state.read(args.run_dir)
    if running is None or running.phase != "phase4":
        print("error: phase 4 is not running here (make phase4 REDIS_NODES=8)", file=sys.stderr)
        return 1
    nodes = [
        s.url.removeprefix("redis://")
        for s in running.services
        if s.service == "redis-node" and s.url
    ]
    try:
        command = redis_cluster.grow_command(nodes)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"growing the cluster: {' '.join(command[2:])}", flush=True)
    return subprocess.run(command, check=False).returncode


def cmd_logs(args: argparse.Namespace) -> int:
    if choose_runtime(args.runtime) == "docker":
        flags = ["-n", str(args.lines), *(["-f"] if args.follow else [])]
        return docker.main(["logs", *flags, *([args.service] if args.service else [])])
    running = state.read(args.run_dir)
    if running is not None:
        files = _show.running_logs(running, args.service)
        if files is None:
            return 1
    else:
        # The folder keeps every earlier run's logs (phase 1's app.log beside phase 3's
        # app-1.log): with nothing running, say that these are old.
        folder = args.run_dir / "logs"
        files = sorted(folder.glob("*.log")) if folder.exists() else []
        if args.service:
            files = [
                f for f in files if f.stem == args.service or f.stem.startswith(args.service + "-")
            ]
        if files:
            print(f"nothing is running natively: the logs of earlier runs in {folder}", flush=True)
    if not files:
        print("no logs" + (f" for {args.service}" if args.service else ""), file=sys.stderr)
        return 1
    command = ["tail", "-n", str(args.lines)]
    if args.follow:
        command.append("-F")
    return subprocess.run([*command, *map(str, files)], check=False).returncode


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lab", description=__doc__)
    top.add_argument("--run-dir", type=Path, default=RUN_DIR, help=argparse.SUPPRESS)
    top.add_argument(
        "--runtime",
        default=os.environ.get("RUNTIME", "") or "auto",
        help="docker, native, or auto (default: docker when an engine answers)",
    )
    parsers = docker.add_commands(
        top.add_subparsers(dest="command", required=True),
        up=("start a phase and wait until every service is ready", cmd_up),
        supervise=(argparse.SUPPRESS, cmd_supervise),
        down=("stop everything the lab started", cmd_down),
        clean=("down, then delete the run folder and its data", cmd_clean),
        status=("what runs where", cmd_status),
        logs=("the last lines of each service's log", cmd_logs),
        grow=("phase 4: add a spare primary and its replica to the cluster, rebalance", cmd_grow),
    )
    for name in ("up", "supervise"):
        parsers[name].add_argument("phase", choices=sorted(PHASES))
    parsers["supervise"].add_argument("--notify-fd", type=int, default=None)
    docker.logs_options(parsers["logs"])
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
