"""Shared by the phase 3 tests: the stack, and what Redis and PostgreSQL hold.

The bounded load (Load, Outcome) and the exposition/row readers are phase 2's
(tests/phase2/_phase2.py), imported rather than copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import psutil
import redis

from lab.native.stack import Stack, running
from signup import _stream
from tests.conftest import server_folder
from tests.phase2._phase2 import SKIP_MONITORING, Outcome

STREAM = "signups"


@contextmanager
def phase3(
    name: str,
    *,
    environment: Mapping[str, Mapping[str, str]] | None = None,
    watch: bool = False,
    monitoring: bool = False,
) -> Iterator[Stack]:
    """Phase 3 natively, on free ports, in a folder outside pytest's (see server_folder)."""
    skip = () if monitoring else (*SKIP_MONITORING, "redis-exporter")
    with (
        server_folder(f"{name}-") as folder,
        running("phase3", folder, environment=environment, skip=skip, watch=watch) as stack,
    ):
        yield stack


def redis_client(stack: Stack) -> redis.Redis:
    return redis.Redis(port=stack.ctx.ports.redis, socket_timeout=5)


def backlog(stack: Stack) -> tuple[int, int]:
    """(entries in the stream, entries read but not acknowledged)."""
    with redis_client(stack) as client:
        if not client.exists(STREAM):
            return 0, 0
        return int(client.xlen(STREAM)), int(client.xpending(STREAM, _stream.GROUP)["pending"])


def drained(stack: Stack) -> Callable[[], bool]:
    return lambda: backlog(stack) == (0, 0)


def held_by_writer(stack: Stack, pid: int) -> int:
    """Entries the writer process `pid` has read and not acknowledged (a batch in hand)."""
    with redis_client(stack) as client:
        try:
            consumers = client.xinfo_consumers(STREAM, _stream.GROUP)
        except redis.ResponseError:  # no stream or group yet
            return 0
    return sum(
        int(c["pending"]) for c in consumers if c["name"].decode().rsplit("-", 2)[1] == str(pid)
    )


def writer_pid(stack: Stack) -> int:
    process = stack.entry("writer").process
    assert process is not None
    assert process.pid is not None
    return process.pid


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


_RAISED = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b")


def evidence(stack: Stack, odd: list[Outcome], lines: int = 20) -> str:
    """For an assertion's message: the unexpected answers, and what nginx and the apps logged
    about them. A rare failure of a fault test is only worth its run if it explains itself."""
    told = [f"{o.status} {o.body!r} {o.error or ''}" for o in odd[:5]]
    for log in sorted((stack.ctx.run_dir / "logs").glob("*.log")):
        if not log.name.startswith(("nginx.", "app")):
            continue
        found = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if any(word in line for word in ("[error]", "[warn]", "Exception", "unhandled"))
            # and a traceback's last line, which names what was raised
            or _RAISED.match(line)
        ]
        told += [f"{log.name}: {line}" for line in found[-lines:]]
    return "\n".join(told)


def statuses(outcomes: list[Outcome]) -> dict[int | None, int]:
    counts: dict[int | None, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts
