"""Start a real server process and wait until it really serves, with mirakuru.

mirakuru already does the hard parts: its own session per process, a deadline on readiness,
SIGTERM then SIGKILL on stop, and finding children by an environment marker. What it lacks
is a readiness check that is a callable (a SQL query, an HTTP 200, a PING): that is this file.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

import mirakuru.base
from mirakuru import Executor
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, TimeoutExpired

# mirakuru registers an atexit hook that SIGKILLs every process whose marker variable
# *contains* the exiting process's pid as a substring. The markers are "<pid>:<uuid4>", so
# when any lab command exits (`make status`, a load test), a 3- or 4-digit pid matches the hex
# of unrelated services' markers and kills them. Every ServerProcess here is stopped
# explicitly (supervisor shutdown, test fixtures' finally), so the hook only does harm.
atexit.unregister(mirakuru.base.cleanup_subprocesses)

__all__ = ["AlreadyRunning", "ProcessExitedWithError", "ServerProcess", "TimeoutExpired"]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, taken: Collection[int] = ()) -> list[int]:
    """`count` distinct ports the kernel calls free, none of them in `taken`.

    All are held bound until every one is chosen: probed one at a time and released, the
    kernel may hand out the same port twice, and two services of one stack would then fight
    over it (a test failed that way: "port ... is already in use, so alertmanager cannot
    start").
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port not in taken:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


class ServerProcess(Executor):
    """A process that is ready when `check()` says so, and refuses to start on a busy port."""

    def __init__(
        self,
        command: list[str],
        *,
        check: Callable[[], bool],
        port: int | None,
        log_file: Path,
        env: dict[str, str],
        timeout: float = 60,
        cwd: str | None = None,
        stop_signal: int = 15,
    ) -> None:
        self._check = check
        self.port = port
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[Any] | None = None
        super().__init__(
            command,
            cwd=cwd,
            timeout=timeout,
            sleep=0.1,
            stop_signal=stop_signal,
            envvars=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> ServerProcess:
        # The log is opened per start and closed on stop, so a restarted service appends to it.
        if self._log is None:
            self._log = self.log_file.open("a", encoding="utf-8")
            self._stdout = self._log
        try:
            super().start()
        except BaseException:
            self._close_log()
            raise
        return self

    def stop(self, *args: Any, **kwargs: Any) -> ServerProcess:
        try:
            super().stop(*args, **kwargs)
        finally:
            self._close_log()
        return self

    def kill(self, *args: Any, **kwargs: Any) -> ServerProcess:
        try:
            super().kill(*args, **kwargs)
        finally:
            self._close_log()
        return self

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def pre_start_check(self) -> bool:
        return self.port is not None and port_in_use(self.port)

    def after_start_check(self) -> bool:
        try:
            return self._check()
        except Exception:
            return False

    @property
    def pid(self) -> int | None:
        process = self.process
        return None if process is None else int(process.pid)

    def exit_code(self) -> int | None:
        """None while running; the exit status once it stopped by itself."""
        process = self.process
        return None if process is None else process.poll()
