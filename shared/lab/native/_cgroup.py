"""Per-service cgroups for the native runtime: the compose limits, applied the way Docker does.

Docker gives each container a cgroup with a CPU quota (`cpus: 0.5` is 50 ms per 100 ms period)
and a memory limit. Here each native service gets the same, under one parent cgroup per run.
Both cgroup v2 (unified) and v1 (cpu, cpuacct and memory hierarchies) are handled; without root
or a writable hierarchy, services run unlimited and the runtime says so.

The period is Docker's 100 ms unless LAB_CPU_PERIOD_US says otherwise. The bench's scale model
uses 10 ms: a service at 0.2 CPU that spends its quota early in a 100 ms period waits 80 ms for
the next one, which alone breaks a 100 ms latency SLO; with 10 ms periods it waits at most 8.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.runtime import DOCKER_PERIOD_US

ROOT = Path(os.environ.get("LAB_CGROUP_ROOT", "/sys/fs/cgroup"))


def period_us(env: Mapping[str, str] | None = None) -> int:
    """The CFS period for every service's quota: LAB_CPU_PERIOD_US, else Docker's."""
    raw = (os.environ if env is None else env).get("LAB_CPU_PERIOD_US", "")
    if not raw:
        return DOCKER_PERIOD_US
    # The kernel takes 1 ms to 1 s; below 1 ms the scheduler's own overhead dominates.
    if not raw.isdigit() or not 1_000 <= int(raw) <= 1_000_000:
        raise ValueError(f"LAB_CPU_PERIOD_US={raw!r}: microseconds from 1000 to 1000000")
    return int(raw)


# The smallest CFS quota Linux takes, in microseconds (cpu.cfs_quota_us, cpu.max).
MIN_QUOTA_US = 1000
MAX_PERIOD_US = 1_000_000


def cfs(cpus: float, period: int) -> tuple[int, int]:
    """(quota, period) in microseconds giving `cpus` cores: the period asked for, unless the
    quota would fall under the kernel's 1 ms; then the 1 ms quota over a longer period, the
    same share of a core. Clamping the quota instead gave a Redis node asked for 0.04 CPU 1 ms
    of every 10 ms period, 0.1 CPU, while every report divided by 0.04 (it "used" 170 %)."""
    quota = round(cpus * period)
    if quota >= MIN_QUOTA_US:
        return quota, period
    return MIN_QUOTA_US, min(MAX_PERIOD_US, math.ceil(MIN_QUOTA_US / cpus))


@dataclass(frozen=True)
class Throttling:
    """CFS bandwidth counters: how often the quota ran out, and for how long in all."""

    periods: int
    throttled: int
    throttled_seconds: float


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    memory_bytes: int


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def _v1_dirs(relative: str) -> dict[str, Path]:
    return {ctl: ROOT / ctl / relative for ctl in ("cpu", "cpuacct", "memory")}


def available() -> str | None:
    """None when per-service limits work here, else the reason they do not."""
    if os.geteuid() != 0:
        return "not root: cgroups cannot be created"
    if _v2():
        if not os.access(ROOT, os.W_OK):
            return f"{ROOT} is not writable"
        controllers = (ROOT / "cgroup.controllers").read_text().split()
        missing = {"cpu", "memory"} - set(controllers)
        return f"cgroup v2 lacks controllers {sorted(missing)}" if missing else None
    for ctl in ("cpu", "cpuacct", "memory"):
        if not os.access(ROOT / ctl, os.W_OK):
            return f"cgroup v1 hierarchy {ROOT / ctl} is missing or not writable"
    return None


class Cgroup:
    """One service's cgroup: created with limits, joined by its process, read for usage."""

    def __init__(self, relative: str, period: int = DOCKER_PERIOD_US) -> None:
        self.relative = relative.strip("/")
        self.v2 = _v2()
        self.period = period

    @property
    def dirs(self) -> list[Path]:
        if self.v2:
            return [ROOT / self.relative]
        return list(_v1_dirs(self.relative).values())

    def create(self, cpus: float | None, memory: int | None, *, weight: int | None = None) -> None:
        """Limits like Docker's; `weight` (1-10000, 100 is everyone's default) is a share
        reserved under contention, the way `docker run --cpu-shares` is (shares = 10.24 x)."""
        if self.v2:
            self._enable_controllers()
        for path in self.dirs:
            path.mkdir(parents=True, exist_ok=True)
        quota, period = ("max", self.period) if cpus is None else cfs(cpus, self.period)
        if self.v2:
            base = ROOT / self.relative
            (base / "cpu.max").write_text(f"{quota} {period}")
            (base / "memory.max").write_text("max" if memory is None else str(memory))
            if weight is not None:
                (base / "cpu.weight").write_text(str(weight))
        else:
            dirs = _v1_dirs(self.relative)
            (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
            (dirs["cpu"] / "cpu.cfs_quota_us").write_text("-1" if quota == "max" else str(quota))
            (dirs["memory"] / "memory.limit_in_bytes").write_text(
                "-1" if memory is None else str(memory)
            )
            if weight is not None:
                (dirs["cpu"] / "cpu.shares").write_text(str(round(weight * 10.24)))

    def _enable_controllers(self) -> None:
        # v2 only delegates a controller to children the parent enabled in subtree_control.
        path = ROOT
        for part in Path(self.relative).parts:
            control = path / "cgroup.subtree_control"
            current = control.read_text().split()
            for ctl in ("cpu", "memory"):
                if ctl not in current:
                    control.write_text(f"+{ctl}")
            path = path / part
            path.mkdir(exist_ok=True)

    def join_command(self, command: list[str]) -> list[str]:
        """Wrap a command so its first process joins the cgroup before it execs.

        Joining from inside (the shell writes its own pid, then execs) means every process the
        service forks later is born inside: no window in which a child escapes the limit.
        """
        procs = [str(path / "cgroup.procs") for path in self.dirs]
        script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f"; done; '
        script += 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'
        return ["sh", "-c", script, "lab-cgroup", *procs, "--", *command]

    def usage(self) -> Usage:
        if self.v2:
            base = ROOT / self.relative
            stat = dict(
                line.split() for line in (base / "cpu.stat").read_text().splitlines() if line
            )
            return Usage(int(stat["usage_usec"]) / 1e6, int((base / "memory.current").read_text()))
        dirs = _v1_dirs(self.relative)
        cpu_ns = int((dirs["cpuacct"] / "cpuacct.usage").read_text())
        memory = int((dirs["memory"] / "memory.usage_in_bytes").read_text())
        return Usage(cpu_ns / 1e9, memory)

    def throttling(self) -> Throttling:
        cpu = ROOT / self.relative if self.v2 else _v1_dirs(self.relative)["cpu"]
        stat = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines() if line)
        throttled = (
            int(stat.get("throttled_usec", 0)) / 1e6
            if self.v2
            else int(stat.get("throttled_time", 0)) / 1e9
        )
        return Throttling(int(stat["nr_periods"]), int(stat["nr_throttled"]), throttled)

    def pids(self) -> list[int]:
        procs = self.dirs[0] / "cgroup.procs"
        try:
            return [int(line) for line in procs.read_text().split()]
        except OSError:
            return []

    def limits(self) -> tuple[float | None, int | None]:
        """(cpus, memory bytes) as the kernel holds them, for the compose/native agreement test."""
        if self.v2:
            base = ROOT / self.relative
            quota, period = (base / "cpu.max").read_text().split()
            mem = (base / "memory.max").read_text().strip()
            cpus = None if quota == "max" else int(quota) / int(period)
            return cpus, None if mem == "max" else int(mem)
        dirs = _v1_dirs(self.relative)
        quota_us = int((dirs["cpu"] / "cpu.cfs_quota_us").read_text())
        period_us = int((dirs["cpu"] / "cpu.cfs_period_us").read_text())
        mem_bytes = int((dirs["memory"] / "memory.limit_in_bytes").read_text())
        cpus = None if quota_us < 0 else quota_us / period_us
        # v1 reports "unlimited" as a huge page-rounded number.
        return cpus, None if mem_bytes >= 1 << 60 else mem_bytes

    def destroy(self) -> None:
        for path in self.dirs:
            remove_tree(path)


def remove_tree(path: Path) -> None:
    """rmdir a cgroup and its children, deepest first (cgroup dirs cannot be rm -r'ed)."""
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        _rmdir(child)
    _rmdir(path)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        # Still has processes (a service that ignored SIGKILL cannot exist, but a zombie can
        # linger a moment); leave it rather than fail the shutdown.
        shutil.rmtree(path, ignore_errors=True)
