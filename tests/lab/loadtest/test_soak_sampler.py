"""How the soak measures: memory read from real processes, a window's median of its readings,
and the sampler's schedule of readings and forced events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lab.loadtest import _soak_sampler as sampling
from lab.loadtest._soak_sampler import Reading, Sample
from lab.loadtest.soak import WARMUP_WINDOWS, judge

MIB = 1 << 20


def breathing(level_mib: float) -> list[Reading]:
    """A garbage-collected process's readings over one window: mostly `level_mib`, with a
    collection's crest of 3 MiB above it caught in a quarter of them."""
    crest = [0, 0, 3, 0] * (sampling.READINGS // 4)
    return [
        Reading(
            pids={"go-exporter": 7},
            rss={"go-exporter": int((level_mib + c) * MIB)},
            private={"go-exporter": int((level_mib + c) * MIB)},
        )
        for c in crest
    ]


@pytest.mark.parametrize(("window_s", "readings"), [(60, 12), (12, 12), (2, 2), (0.1, 1)])
def test_readings_are_at_most_one_a_second(window_s: float, readings: int) -> None:
    assert sampling.readings_per_window(window_s) == readings


def test_a_window_is_the_median_of_its_readings() -> None:
    readings = breathing(6)
    readings[-1].pids["go-exporter"] = 8  # restarted just before the window closed
    sample = sampling.window_sample(60.0, readings, claims=5)
    assert sample.private == {"go-exporter": 6 * MIB}
    assert sample.rss == {"go-exporter": 6 * MIB}
    assert sample.pids == {"go-exporter": 8}
    assert (sample.at, sample.claims) == (60.0, 5)


def test_a_breathing_process_passes_and_a_rising_one_fails() -> None:
    def run(levels: list[float]) -> list[Sample]:
        return [sampling.window_sample(float(i), breathing(v), None) for i, v in enumerate(levels)]

    steady = [6.0] * (WARMUP_WINDOWS + 1) + [6.0] * 24
    [verdict] = judge(run(steady))
    assert verdict.ok
    assert verdict.grew == 0
    # Its crests are 50 % above its level: one reading a window would have failed it.
    rising = [6.0] * (WARMUP_WINDOWS + 1) + [6 + 0.1 * w for w in range(1, 25)]
    [verdict] = judge(run(rising))
    assert not verdict.ok
    assert verdict.grew == int(8.3 * MIB) - int(6.1 * MIB)  # samples 27 to 29 over 5 to 7


FORKED = """
import os, signal, sys, time
block = bytes(range(256)) * (64 * 1024 * 1024 // 256)  # 64 MiB, every page written
if os.fork() == 0:
    time.sleep(120)
    sys.exit(0)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def forked() -> Iterator[int]:
    """A process holding 64 MiB, forked once: both see the same pages until one writes."""
    with subprocess.Popen(
        [sys.executable, "-c", FORKED], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            yield process.pid
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_memory_of_a_forked_process_counts_shared_pages_once(forked: int) -> None:
    rss, private = sampling.memory_of(forked)
    # RSS counts the 64 MiB in both processes; their proportional anonymous share, once.
    assert rss > 120 * MIB
    assert 60 * MIB < private < 90 * MIB


def test_the_sampler_samples_every_window_and_reports_a_failed_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3 s: WINDOWS windows of a tenth of a second, READINGS readings each when the gap allows.
    monkeypatch.setattr(sampling, "MIN_GAP_S", 0.001)
    sampler = sampling.Sampler({"this": os.getpid()}, 3.0, database_url=None, redis_url=None)
    reads = 0
    read = sampler._read

    def counted() -> Reading:
        nonlocal reads
        reads += 1
        return read()

    monkeypatch.setattr(sampler, "_read", counted)
    sampler.start()
    sampler._thread.join(timeout=30)  # a 3-second run ends by itself
    assert reads == 1 + sampling.WINDOWS * sampling.READINGS
    assert len(sampler.samples) == sampling.WINDOWS + 1
    assert [s.at for s in sampler.samples] == sorted(s.at for s in sampler.samples)
    assert all(s.private["this"] > 0 and s.rss["this"] > 0 for s in sampler.samples)
    # No database to checkpoint and no Redis: the one event tried is reported as failed.
    [event] = sampler.events
    assert event["event"] == "postgres CHECKPOINT"
    assert event["outcome"].startswith("failed")
