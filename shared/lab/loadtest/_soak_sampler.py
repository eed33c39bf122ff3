"""How the soak measures while k6 runs: every service's memory up to READINGS times a window,
each window's median, and the two events it forces (a PostgreSQL CHECKPOINT at 40 % of the run, a
Redis AOF rewrite at 60 %), in a thread beside k6.

A window's median, not one reading at its end: a garbage-collected process (the Go exporters)
breathes by a megabyte or two between collections, and a single reading lands anywhere in that
breath. One soak judged that way failed two exporters whose memory had no trend: its base
reading fell in a trough, and a later one on a crest.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

WINDOWS = 30
READINGS = 12  # a window's memory readings: every 5 s in the full run
# ...but no more than one a second: a reading walks /proc for every service's processes, and
# a short soak's windows of a second or two would spend a core on it.
MIN_GAP_S = 1.0
CHECKPOINT_AT, AOF_REWRITE_AT = 0.4, 0.6


def readings_per_window(window_s: float) -> int:
    return max(1, min(READINGS, int(window_s / MIN_GAP_S)))


class EventFailed(Exception):
    """A forced event that did not complete; its message is the event's outcome."""


def process_tree() -> dict[int, list[int]]:
    """Every process's children, from one walk over /proc (psutil's `children()` walks it
    again on each call, once per service and reading)."""
    tree: dict[int, list[int]] = {}
    for process in psutil.process_iter(["ppid"]):
        tree.setdefault(process.info["ppid"], []).append(process.pid)
    return tree


def memory_of(pid: int, tree: dict[int, list[int]] | None = None) -> tuple[int, int]:
    """(RSS, anonymous PSS) in bytes of a process and all its descendants."""
    tree = process_tree() if tree is None else tree
    psutil.Process(pid)  # gone: psutil.NoSuchProcess, as for a service that stopped
    rss = private = 0
    family = [pid]
    for member in family:
        family += tree.get(member, [])
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(member)
            rss += process.memory_info().rss
            private += _pss_anon(process)
    return rss, private


def _pss_anon(process: psutil.Process) -> int:
    try:
        text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
    except OSError:  # not ours to read, or gone: its private share is what RSS does not share
        info = process.memory_info()
        return int(info.rss - getattr(info, "shared", 0))
    found = re.search(r"^Pss_Anon:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


@dataclass
class Reading:
    """Every service's memory at one moment."""

    pids: dict[str, int]
    rss: dict[str, int]
    private: dict[str, int]


@dataclass
class Sample:
    """A window's memory: each service's median over the window's readings."""

    at: float  # seconds since the soak started, at the window's end
    pids: dict[str, int]  # at the window's end: a restart shows as a new or missing pid
    rss: dict[str, int]
    private: dict[str, int]
    claims: int | None  # rows inserted into users so far plus signups queued, when known


def window_sample(at: float, readings: list[Reading], claims: int | None) -> Sample:
    def median(pick: Callable[[Reading], dict[str, int]]) -> dict[str, int]:
        values: dict[str, list[int]] = {}
        for reading in readings:
            for name, value in pick(reading).items():
                values.setdefault(name, []).append(value)
        return {name: int(statistics.median(v)) for name, v in values.items()}

    rss, private = median(lambda r: r.rss), median(lambda r: r.private)
    return Sample(at, readings[-1].pids, rss, private, claims)


class Sampler:
    """Reads memory through every window, keeps each window's sample, and forces the two events,
    in a thread of its own, until the run ends or `stop()`."""

    def __init__(
        self,
        services: dict[str, int],
        duration_s: float,
        database_url: str | None,
        redis_url: str | None,
    ) -> None:
        self.services = services  # name -> pid, from the supervisor's state
        self.duration_s = duration_s
        self.database_url = database_url
        self.redis_url = redis_url
        self.samples: list[Sample] = []
        self.events: list[dict[str, Any]] = []
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-sampler")
        self._forced: list[threading.Thread] = []

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._sample_windows()
        finally:
            # The run's record is complete only with the events' outcomes.
            for event in self._forced:
                event.join()

    def _sample_windows(self) -> None:
        started = time.monotonic()
        window = self.duration_s / WINDOWS
        plan = [(CHECKPOINT_AT * self.duration_s, self._checkpoint)]
        if self.redis_url:
            plan.append((AOF_REWRITE_AT * self.duration_s, self._rewrite_aof))
        self.samples.append(window_sample(0.0, [self._read()], self._claims()))
        readings: list[Reading] = []
        per_window = readings_per_window(window)
        for tick in range(1, WINDOWS * per_window + 1):
            due = tick * window / per_window
            while plan and plan[0][0] < due:
                at, action = plan.pop(0)
                if self._halt.wait(max(0.0, at - (time.monotonic() - started))):
                    return
                # In threads of their own: a slow checkpoint must not delay the samples.
                self._forced.append(threading.Thread(target=action, args=(at,), daemon=True))
                self._forced[-1].start()
            if self._halt.wait(max(0.0, due - (time.monotonic() - started))):
                return
            readings.append(self._read())
            if tick % per_window == 0:
                at = time.monotonic() - started
                self.samples.append(window_sample(at, readings, self._claims()))
                readings = []

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=60)

    def _read(self) -> Reading:
        reading = Reading({}, {}, {})
        tree = process_tree()
        for name, pid in self.services.items():
            with contextlib.suppress(psutil.Error):
                reading.rss[name], reading.private[name] = memory_of(pid, tree)
                reading.pids[name] = pid
        return reading

    def _claims(self) -> int | None:
        try:
            inserted = 0
            if self.database_url:
                with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                    row = conn.execute(
                        "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'users'"
                    ).fetchone()
                    inserted = int(row[0]) if row else 0
            queued = 0
            if self.redis_url:
                with redis.Redis.from_url(self.redis_url, socket_timeout=5) as client:
                    queued = int(client.xlen("signups"))
            return inserted + queued
        except (psycopg.Error, redis.RedisError):
            return None

    def _checkpoint(self, at: float) -> None:
        self._event("postgres CHECKPOINT", at, self._run_checkpoint)

    def _run_checkpoint(self) -> None:
        if not self.database_url:
            raise EventFailed("no database to checkpoint")
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CHECKPOINT")

    def _rewrite_aof(self, at: float) -> None:
        self._event("redis BGREWRITEAOF", at, self._run_rewrite)

    def _run_rewrite(self) -> None:
        assert self.redis_url is not None
        with redis.Redis.from_url(self.redis_url, socket_timeout=10) as client:
            client.bgrewriteaof()
            while client.info("persistence")["aof_rewrite_in_progress"]:
                if self._halt.wait(0.2):  # between polls of Redis's own flag
                    raise EventFailed("the run ended before the rewrite did")
            status = client.info("persistence")["aof_last_bgrewrite_status"]
            if status != "ok":
                raise EventFailed(f"the AOF rewrite ended with {status}")

    def _event(self, name: str, at: float, action: Any) -> None:
        started = time.monotonic()
        try:
            action()
            outcome = "ok"
        except (psycopg.Error, redis.RedisError, EventFailed) as exc:
            outcome = f"failed: {exc}"
        self.events.append(
            {"event": name, "at_s": round(at, 1), "took_s": round(time.monotonic() - started, 2)}
            | {"outcome": outcome}
        )
