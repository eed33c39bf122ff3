"""Per-service cgroups for the native runtime: the compose limits, applied the way Docker does.

Docker gives each container a cgroup with a CPU quota (`cpus: 0.5` is 50 ms per 100 ms period)
and a memory limit. Here each native service gets the same, under one parent cgroup per run.
Both cgroup v2 (unified) and v1 (cpu, cpuacct and memory hierarchies) are handled; without root
or a writable hierarchy, services run unlimited and the runtime says so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(os.environ.get("LAB_CGROUP_ROOT", "/sys/fs/cgroup"))
PERIOD_US = 100_000


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

    def __init__(self, relative: str) -> None:
        self.relative = relative.strip("/")
        self.v2 = _v2()

    @property
    def dirs(self) -> list[Path]:
        if self.v2:
            return [ROOT / self.relative]
        return list(_v1_dirs(self.relative).values())

    def create(self, cpus: float | None, memory: int | None) -> None:
        if self.v2:
            self._enable_controllers()
        for path in self.dirs:
            path.mkdir(parents=True, exist_ok=True)
        quota = "max" if cpus is None else str(max(1000, round(cpus * PERIOD_US)))
        if self.v2:
            base = ROOT / self.relative
            (base / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            (base / "memory.max").write_text("max" if memory is None else str(memory))
        else:
            dirs = _v1_dirs(self.relative)
            (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (dirs["cpu"] / "cpu.cfs_quota_us").write_text("-1" if quota == "max" else quota)
            (dirs["memory"] / "memory.limit_in_bytes").write_text(
                "-1" if memory is None else str(memory)
            )

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
