"""The Docker runtime behind `make status`, `logs`, `down`, `clean` and the load tests.

A phase started with Docker is a compose project: the `name:` of its compose file. What runs is
what `docker compose ls` lists; each container, its state and the ports it publishes come from
`docker compose ps --format json`. From those the load tests get the same `RunState` a native
run writes (with runtime "docker"): the phase, its entry URL, Prometheus, and the database at
the port its compose file publishes on 127.0.0.1 (the native runtime's port, LAB_PORT_DB).

`python -m lab.docker status|logs|down` runs shared/docker.sh, which is what make runs for those
targets under Docker, without Python. The parsers are pure functions; everything else needs a
Docker engine.

The package is this module, plus __main__.py for `python -m lab.docker`. It imports only the
base modules of lab (topology, state, runtime), never the native runtime: lab.cli and the load
tests import it, and a phase run by Docker needs nothing of lab.native.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.runtime import Ports, RunContext
from lab.state import RunState, ServiceState
from lab.topology import PHASES, REPO, TopologyError, load

LOOPBACK = "127.0.0.1"
SCRIPT = REPO / "shared" / "docker.sh"


class DockerError(RuntimeError):
    """A docker compose command failed; the message says which and why, in one line."""


@dataclass(frozen=True)
class Publisher:
    host: str
    published: int
    target: int


@dataclass(frozen=True)
class Container:
    name: str
    service: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    exit_code: int
    publishers: tuple[Publisher, ...] = ()

    def published(self, target: int | None = None) -> Publisher | None:
        """The first host port this container publishes (for `target`, when given)."""
        return next((p for p in self.publishers if target is None or p.target == target), None)


def compose_file(phase: str) -> Path:
    return PHASES[phase] / "compose.yaml"


def project(phase: str) -> str:
    """The compose project a phase runs as: the `name:` of its compose file."""
    document = yaml.safe_load(compose_file(phase).read_text()) or {}
    return str(document.get("name") or compose_file(phase).parent.name)


def phase_of(project_name: str) -> str | None:
    return next((phase for phase in PHASES if project(phase) == project_name), None)


def parse_ls(text: str) -> list[str]:
    """Project names from `docker compose ls --format json` (a JSON array)."""
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("docker compose ls --format json: expected a JSON array")
    return [str(item["Name"]) for item in data]


def parse_ps(text: str) -> list[Container]:
    """Containers from `docker compose ps --format json`: one JSON object a line since
    Compose 2.21, a JSON array before."""
    text = text.strip()
    if not text:
        return []
    items: list[Any] = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return [_container(item) for item in items]


def _container(item: Mapping[str, Any]) -> Container:
    publishers = []
    for pub in item.get("Publishers") or ():
        published = int(pub.get("PublishedPort") or 0)
        if published:  # 0: exposed inside the network only
            host = str(pub.get("URL") or "")
            # A wildcard bind answers on loopback too; the compose files bind 127.0.0.1.
            publishers.append(
                Publisher(
                    LOOPBACK if host in ("", "0.0.0.0", "::") else host,
                    published,
                    int(pub.get("TargetPort") or 0),
                )
            )
    return Container(
        name=str(item["Name"]),
        service=str(item["Service"]),
        state=str(item.get("State") or ""),
        health=str(item.get("Health") or ""),
        exit_code=int(item.get("ExitCode") or 0),
        publishers=tuple(publishers),
    )


def _address(pub: Publisher) -> str:
    host = f"[{pub.host}]" if ":" in pub.host else pub.host
    return f"{host}:{pub.published}"


def run_state(
    phase: str, containers: Iterable[Container], env: Mapping[str, str] | None = None
) -> RunState:
    """A Docker phase as the load tests and the report read a native one. The database URL
    is the migrate service's, at the port the db container publishes, through the same
    function that gives a native run's (RunContext.database_url)."""
    try:
        topology = load(phase, env)
    except TopologyError:
        topology = None
    services = []
    addresses: dict[tuple[str, int], str] = {}
    for c in sorted(containers, key=lambda c: c.name):
        pub = c.published()
        spec = topology.services.get(c.service) if topology is not None else None
        url = None
        if pub is not None and c.service != "db":
            url = f"http://{_address(pub)}"
        db = c.published(5432) if c.service == "db" else None
        if db is not None:
            addresses[("db", 5432)] = _address(db)
        services.append(
            ServiceState(
                name=c.name,
                service=c.service,
                pid=None,
                port=pub.published if pub else None,
                url=url,
                oneshot=spec is not None and not spec.restarts,  # migrate
                exit_code=c.exit_code if c.state == "exited" else None,
            )
        )
    database_url = None
    if topology is not None:
        ctx = RunContext(topology, Path(), Ports(), addresses=addresses)
        database_url = ctx.database_url()
    return RunState(
        phase=phase,
        supervisor_pid=0,  # no supervisor: the engine keeps the containers running
        supervisor_created=0.0,
        run_id=project(phase),
        cgroups="docker",
        services=tuple(services),
        database_url=database_url,
        runtime="docker",
        containers_url=next((s.url for s in services if s.service == "cadvisor" and s.url), None),
    )


def compose_command(phase: str | None, *args: str) -> list[str]:
    files = ["-f", str(compose_file(phase))] if phase else []
    return ["docker", "compose", *files, *args]


def _capture(command: Sequence[str], timeout: float = 30.0) -> str:
    if shutil.which(command[0]) is None:
        raise DockerError(f"no `{command[0]}` command on PATH")
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DockerError(f"`{' '.join(command)}` did not answer in {timeout:.0f} s") from None
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()
        raise DockerError(
            f"`{' '.join(command)}` failed: {reason[-1] if reason else result.returncode}"
        )
    return result.stdout


def running_phases() -> list[str]:
    """The phases whose compose project has running containers (one, as they share ports)."""
    listed = parse_ls(_capture(compose_command(None, "ls", "--format", "json")))
    return [phase for name in listed if (phase := phase_of(name)) is not None]


def containers(phase: str) -> list[Container]:
    return parse_ps(_capture(compose_command(phase, "ps", "--all", "--format", "json")))


def running() -> RunState | None:
    """The phase Docker runs here, or None: none runs, or no engine answers."""
    try:
        phases = running_phases()
        return run_state(phases[0], containers(phases[0])) if phases else None
    except (DockerError, ValueError, KeyError):
        return None


def script(*args: str, **env: str) -> int:
    """shared/docker.sh: the Docker side of up, status, logs, down and grow, written once in shell
    so that make runs it without .venv; `python -m lab` hands it on there too."""
    if shutil.which("docker") is None:
        print("error: no `docker` command on PATH", file=sys.stderr)
        return 1
    command = ["sh", str(SCRIPT), *args]
    return subprocess.run(command, env={**os.environ, **env}, check=False).returncode


def cmd_status(args: argparse.Namespace) -> int:
    return script("status")


def cmd_logs(args: argparse.Namespace) -> int:
    follow = ["--follow"] if args.follow else []
    return script("logs", *follow, *([args.service] if args.service else []), LINES=str(args.lines))


def cmd_grow(args: argparse.Namespace) -> int:
    """Phase 4: the cluster's two spare nodes join as a primary and its replica."""
    return script("grow")


def cmd_down(args: argparse.Namespace) -> int:
    """Every phase's project, running or not: `clean` (--volumes) deletes the data of all."""
    return script("down", *(["--volumes"] if args.volumes else []))


Command = Callable[[argparse.Namespace], int]


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], **commands: tuple[str, Command]
) -> dict[str, argparse.ArgumentParser]:
    """Subcommands (name=(help, handler)), in the order given; both runtimes' CLIs build theirs
    here."""
    parsers = {}
    for name, (text, func) in commands.items():
        # argparse lists a subcommand given any help, even SUPPRESS, as "==SUPPRESS==".
        hidden = text == argparse.SUPPRESS
        parsers[name] = sub.add_parser(name) if hidden else sub.add_parser(name, help=text)
        parsers[name].set_defaults(func=func)
    # Named, so that the usage line does not list the hidden ones either (argparse's own
    # errors already call the argument "command", its dest).
    sub.metavar = "command"
    return parsers


def logs_options(logs: argparse.ArgumentParser) -> None:
    """`logs`' arguments, the same in both CLIs, so `lab logs` can hand them on to Docker."""
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=20)
    logs.add_argument("-f", "--follow", action="store_true")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m lab.docker", description=__doc__)
    parsers = add_commands(
        top.add_subparsers(dest="command", required=True),
        status=("the running phase's containers", cmd_status),
        logs=("the last lines of each container's log", cmd_logs),
        down=("docker compose down for every phase", cmd_down),
        grow=("phase 4: two spare nodes join the cluster, which is rebalanced", cmd_grow),
    )
    logs_options(parsers["logs"])
    parsers["down"].add_argument(
        "--volumes", action="store_true", help="also delete the data (clean)"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DockerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
