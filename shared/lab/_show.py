"""What `lab up`, `lab status` and `lab logs` show of a native run: its processes, limits and
log files, read from the run state."""

from __future__ import annotations

import sys
from pathlib import Path

from lab.state import RunState


def services(running: RunState) -> None:
    """What runs where: one line a process, with its limits and what each one-shot did."""
    for svc in running.services:
        status = f"ran once, exit {svc.exit_code}" if svc.oneshot else f"pid {svc.pid}"
        where = svc.url or (f"127.0.0.1:{svc.port}" if svc.port else "")
        limit = ""
        if svc.cpus or svc.memory:
            mem = f"{svc.memory // 2**20}M" if svc.memory else "-"
            limit = f"[{svc.cpus or '-'} cpu, {mem}]"
        print(f"  {svc.name:<20} {where:<40} {status:<18} {limit}")
    for name, reason in running.skipped.items():
        print(f"  {name:<20} not run natively: {reason}")
    # What each one-shot did, in its own last words: the migrations applied, the claims
    # rebuilt from the table (and how long that took).
    for svc in running.services:
        if svc.oneshot and svc.log and Path(svc.log).exists():
            lines = [ln for ln in Path(svc.log).read_text().splitlines() if ln.strip()]
            if lines:
                print(f"  {svc.name}: {lines[-1].strip()}")
    print(f"  cgroups: {running.cgroups}")


def running_logs(running: RunState, service: str | None) -> list[Path] | None:
    """The log files of the running phase's processes (of one service, or one replica, when
    asked); None, after one line saying why, for a name the phase does not have."""
    picked = [s for s in running.services if service in (None, s.service, s.name)]
    if not picked:
        names = ", ".join(sorted({s.service for s in running.services}))
        print(
            f"error: {running.phase} has no service {service!r} (it has {names})", file=sys.stderr
        )
        return None
    if service and len(picked) > 1:
        print(f"{service}: {len(picked)} replicas, {', '.join(s.name for s in picked)}", flush=True)
    return [Path(s.log) for s in picked if s.log and Path(s.log).exists()]
