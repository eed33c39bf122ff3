"""The soak (`make load-test-soak`): a phase at 70 % of its sustained rate for half an hour, and
what must not drift while it runs.

k6 (loadtests/soak.js) offers the load in WINDOWS equal windows (a minute each in the full
run) and records each window's p99. Beside it, `Sampler` reads every service's memory READINGS
times a window and keeps each window's median, and forces a PostgreSQL CHECKPOINT (at 40 % of
the run) and a Redis AOF rewrite (at 60 %), the two moments a long run meets that a short one
does not. `judge` then asks, service by service, whether memory grew more than 10 % after the
first sixth of the run (5 minutes of 30): a leak shows as growth that does not stop.

A window's median, not one reading at its end: a garbage-collected process (the Go exporters)
breathes by a megabyte or two between collections, and a single reading lands anywhere in that
breath. One soak judged that way failed two exporters whose memory had no trend: its base
reading fell in a trough, and a later one on a crest.

Memory is judged on each service's anonymous memory, summed proportionally over its processes
(Pss_Anon): a page two processes share after a fork counts once. RSS, also recorded, counts
PostgreSQL's shared buffers in every backend that touched them (a cache filling up to
shared_buffers, not a leak) and a Redis rewrite's forked child as a second Redis. Two services
grow by design: Redis by CLAIM_BYTES for each claim the run adds, and Prometheus is not judged,
because its head block keeps the last two hours of samples in memory. A service the supervisor
restarted during the run fails it.
"""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

from lab.state import RunState
from lab.topology import REPO

SHARE = 0.7
WINDOWS = 30
WARMUP_WINDOWS = 5
GROWTH = 0.10
# Growth smaller than this is a garbage collector's or an allocator's breathing, not a trend.
JITTER = 1 << 20
READINGS = 12  # a window's memory readings: every 5 s in the full run
# What a claim costs Redis's RSS over its life (accepted with a pending token, then recorded),
# from a sixth of a soak's claims to all of them: `python -m signup._claims_memory` prints it
# as "a claim's life". Three runs gave 19.7, 20.4 and 20.6 bytes, rounded up here so that
# spread is not read as a leak. 13.5 of them are in used_memory (what maxmemory limits); the
# rest is the allocator's fragmentation from rewriting every claim in place.
CLAIM_BYTES = 21
CHECKPOINT_AT, AOF_REWRITE_AT = 0.4, 0.6
UNJUDGED = {"prometheus": "keeps the last two hours of samples in memory (its head block)"}
BENCH_RESULTS = REPO / "docs" / "results"
_DURATION = re.compile(r"(\d+)(ms|s|m|h)")


class SoakError(ValueError):
    """A soak that cannot start as asked; the message is the one line the user sees."""


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in _DURATION.findall(duration))


def default_rate(phase: str, folder: Path = BENCH_RESULTS) -> tuple[int, Path]:
    """SHARE of the phase's sustained rate in the newest bench result that measured it."""
    found: list[tuple[str, float, Path]] = []
    for path in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            data = json.loads(path.read_text())
            rate = float(data["phases"][phase]["sustained_rate"])
            if rate > 0:
                # ISO 8601 times in one zone sort as text.
                found.append((str(data.get("bench", {}).get("started_at") or ""), rate, path))
    if not found:
        raise SoakError(
            f"no bench result in {folder} gives {phase}'s sustained rate: run `make bench`, "
            "or set RATE (arrivals per second)"
        )
    _, rate, path = max(found)
    return max(1, round(rate * SHARE)), path


def variables(env: Mapping[str, str], phase: str, duration: str) -> dict[str, str]:
    """k6's RATE (SHARE of the bench's sustained rate unless given), DURATION, SOAK_WINDOWS."""
    raw = env.get("RATE", "")
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise SoakError(f"RATE={raw!r}: a whole number of arrivals per second")
        rate = int(raw)
    else:
        rate, source = default_rate(phase)
        print(f"RATE={rate}: {SHARE:.0%} of {phase}'s sustained rate in {source.name}")
    if seconds(duration) < WINDOWS:
        raise SoakError(f"DURATION={duration}: at least {WINDOWS}s (one second a window)")
    return {"RATE": str(rate), "DURATION": duration, "SOAK_WINDOWS": str(WINDOWS)}


def check_native(phase: str, state: RunState | None) -> RunState:
    """The supervisor's state of the phase the soak runs against; it reads its processes."""
    if state is None or state.runtime != "native" or state.phase != phase:
        raise SoakError(
            f"the soak samples the processes of a native {phase} running here: "
            f"start it with `make {phase}` (RUNTIME=native)"
        )
    return state


def memory_of(pid: int) -> tuple[int, int]:
    """(RSS, anonymous PSS) in bytes of a process and all its descendants."""
    root = psutil.Process(pid)
    rss = private = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
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
    """A window's memory: each service's median over the window's READINGS."""

    at: float  # seconds since the soak started, at the window's end
    pids: dict[str, int]  # at the window's end: a restart shows as a changed pid
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
    """Samples at the end of every window and forces the two events, in a thread of its own,
    until the run ends or `stop()`."""

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
        for tick in range(1, WINDOWS * READINGS + 1):
            due = tick * window / READINGS
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
            if tick % READINGS == 0:
                at = time.monotonic() - started
                self.samples.append(window_sample(at, readings, self._claims()))
                readings = []

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=60)

    def _read(self) -> Reading:
        reading = Reading({}, {}, {})
        for name, pid in self.services.items():
            with contextlib.suppress(psutil.Error):
                reading.rss[name], reading.private[name] = memory_of(pid)
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
            raise SoakError("no database to checkpoint")
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
                    raise SoakError("the run ended before the rewrite did")
            status = client.info("persistence")["aof_last_bgrewrite_status"]
            if status != "ok":
                raise SoakError(f"the AOF rewrite ended with {status}")

    def _event(self, name: str, at: float, action: Any) -> None:
        started = time.monotonic()
        try:
            action()
            outcome = "ok"
        except (psycopg.Error, redis.RedisError, SoakError) as exc:
            outcome = f"failed: {exc}"
        self.events.append(
            {"event": name, "at_s": round(at, 1), "took_s": round(time.monotonic() - started, 2)}
            | {"outcome": outcome}
        )


@dataclass(frozen=True)
class Growth:
    service: str
    base: int  # private bytes at the end of the warm-up
    worst: int  # the largest growth over it afterwards
    allowed: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.worst <= self.allowed


def judged(service: str) -> bool:
    return not any(service == s or service.startswith(f"{s}-") for s in UNJUDGED)


def allowance(service: str, base: int, claims_added: int | None) -> int:
    """What a service may grow by over its memory at the end of the warm-up."""
    allowed = max(int(GROWTH * base), JITTER)
    if service == "redis" and claims_added is not None:
        allowed += int(max(0, claims_added) * CLAIM_BYTES)
    return allowed


def judge(samples: list[Sample]) -> list[Growth]:
    """Each service's memory growth after the warm-up, against what is allowed."""
    if len(samples) <= WARMUP_WINDOWS + 1:
        return []
    warm, later = samples[WARMUP_WINDOWS], samples[WARMUP_WINDOWS + 1 :]
    added = None
    if warm.claims is not None and later[-1].claims is not None:
        added = max(s.claims or 0 for s in later) - warm.claims
    verdicts = []
    for name, base in sorted(warm.private.items()):
        if not judged(name):
            continue
        allowed = allowance(name, base, added)
        note = f"+{added:,} claims allowed for" if name == "redis" and added is not None else ""
        restarted = any(s.pids.get(name) != warm.pids.get(name) for s in later)
        worst = max((s.private.get(name, 0) - base for s in later), default=0)
        if restarted:
            worst, note = max(worst, allowed + 1), "restarted during the soak"
        verdicts.append(Growth(name, base, worst, allowed, note))
    return verdicts
