"""The soak (`make load-test-soak`): a phase at 70 % of its sustained rate for half an hour, and
what must not drift while it runs.

k6 (loadtests/soak.js) offers the load in WINDOWS equal windows (a minute each in the full run) and
records each window's p99. Beside it, `lab.loadtest._soak_sampler` reads every service's memory
through each window and forces a PostgreSQL CHECKPOINT and a Redis AOF rewrite, the two moments a
long run meets that a short one does not. `judge` then asks, service by service, whether memory grew
more than 10 % after the first sixth of the run (5 minutes of 30): its level, the median of three
windows, at every window from then on against its level over the warm-up's last window and the two
after it. A leak shows as a level that keeps rising; a garbage collector's breathing moves single
readings and single windows, not the level.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.loadtest._soak_sampler import WINDOWS, Sample
from lab.state import RunState
from lab.topology import REPO

SHARE = 0.7
WARMUP_WINDOWS = 5
GROWTH = 0.10
# Growth smaller than this is a garbage collector's or an allocator's breathing, not a trend.
JITTER = 1 << 20
# A level is the median of this many windows' medians. Even a window's median of a Go
# exporter moves by half a megabyte from one minute to the next without a trend (one run:
# redis-exporter between 6.3 and 7.5 MiB), so one window against another measures that spread.
LEVEL_WINDOWS = 3
# What a claim costs Redis's RSS over its life (accepted with a pending token, then recorded),
# from a sixth of a soak's claims to all of them: `python -m signup._claims_memory` prints it
# as "a claim's life" (19.7, 20.4 and 20.6 bytes in three runs; GROWTH covers the spread).
# 13.5 of them are in used_memory, what maxmemory limits; the rest is the allocator's
# fragmentation from rewriting every claim in place.
CLAIM_BYTES = 20.4
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


@dataclass(frozen=True)
class Level:
    """A service's memory over LEVEL_WINDOWS windows: the median of their medians."""

    at: float  # seconds since the start, at the last of the windows
    private: int
    claims: int | None  # the median of the windows' claims, of those known


def levels(samples: list[Sample], service: str) -> list[Level]:
    """The service's levels, each over one window and the LEVEL_WINDOWS - 1 before it, from
    the base (the warm-up's last window and the two after it) to the end of the run."""
    found = []
    for end in range(WARMUP_WINDOWS + LEVEL_WINDOWS, len(samples) + 1):
        group = samples[end - LEVEL_WINDOWS : end]
        private = int(statistics.median(s.private.get(service, 0) for s in group))
        known = [s.claims for s in group if s.claims is not None]
        claims = int(statistics.median(known)) if known else None
        found.append(Level(group[-1].at, private, claims))
    return found


@dataclass(frozen=True)
class Growth:
    service: str
    base: int  # private bytes: the base level
    grew: int  # the level over it that came nearest its allowance, or went furthest past it
    allowed: int  # that level's allowance
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.grew <= self.allowed


def judged(service: str) -> bool:
    return not any(service == s or service.startswith(f"{s}-") for s in UNJUDGED)


def allowance(service: str, base: Level, now: Level) -> int:
    """What a service may grow by from its base level to a later one: GROWTH of what it should
    hold by then (at least JITTER), and for Redis also the claims added since."""
    expected = 0
    if service == "redis" and base.claims is not None and now.claims is not None:
        expected = int(max(0, now.claims - base.claims) * CLAIM_BYTES)
    return expected + max(int(GROWTH * (base.private + expected)), JITTER)


def judge(samples: list[Sample]) -> list[Growth]:
    """Each service's level at every window after the base against what it may have grown by
    then: no level may pass its allowance. A service whose pid changed or vanished between
    any two samples was restarted, and fails."""
    if len(samples) < WARMUP_WINDOWS + 2 * LEVEL_WINDOWS:
        return []
    names = sorted({name for s in samples for name in s.private})
    return [_verdict(name, samples) for name in names if judged(name)]


def _verdict(name: str, samples: list[Sample]) -> Growth:
    base, *later = levels(samples, name)
    # The level that came nearest its allowance, or went furthest past it.
    worst = max(later, key=lambda level: level.private - allowance(name, base, level))
    allowed = allowance(name, base, worst)
    note = ""
    if name == "redis":
        if base.claims is None or worst.claims is None:
            note = "claims unknown: none allowed for"
        else:
            note = f"+{worst.claims - base.claims:,} claims allowed for"
    grew = worst.private - base.private
    if len({s.pids.get(name) for s in samples}) > 1:
        grew, note = max(grew, allowed + 1), "restarted during the soak"
    return Growth(name, base.private, grew, allowed, note)
