"""Per-service cgroups on this machine's real kernel interface (needs root, as CI has)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from lab import _cgroup

pytestmark = pytest.mark.skipif(
    _cgroup.available() is not None, reason=f"cgroups unavailable: {_cgroup.available()}"
)


@pytest.fixture
def group() -> Iterator[_cgroup.Cgroup]:
    cg = _cgroup.Cgroup(f"signup-lab-test/{uuid.uuid4().hex[:8]}")
    cg.create(cpus=0.25, memory=64 * 2**20)
    try:
        yield cg
    finally:
        cg.destroy()
        for path in _cgroup.Cgroup("signup-lab-test").dirs:
            _cgroup.remove_tree(path)


def test_limits_read_back_as_set(group: _cgroup.Cgroup) -> None:
    assert group.limits() == (0.25, 64 * 2**20)


def test_unlimited(group: _cgroup.Cgroup) -> None:
    group.create(cpus=None, memory=None)
    assert group.limits() == (None, None)


def test_joined_process_and_its_children_are_accounted(group: _cgroup.Cgroup) -> None:
    # The child burns CPU in a grandchild: both must be inside, from their first instruction.
    script = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(range(3_000_000))'])"
    )
    command = group.join_command(["python3", "-c", script])
    before = group.usage().cpu_seconds
    proc = subprocess.run(command, check=True, capture_output=True, text=True)
    assert proc.returncode == 0
    assert group.usage().cpu_seconds > before


def test_join_command_reports_cgroup_membership(group: _cgroup.Cgroup) -> None:
    out = subprocess.run(
        group.join_command(["cat", "/proc/self/cgroup"]), check=True, capture_output=True, text=True
    ).stdout
    assert group.relative in out
