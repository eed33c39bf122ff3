"""Per-service cgroups on this machine's real kernel interface (needs root, as CI has)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from lab.native import _cgroup
from lab.runtime import DOCKER_PERIOD_US

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


def test_a_short_period_keeps_the_share_and_is_read_back() -> None:
    cg = _cgroup.Cgroup(f"signup-lab-test/{uuid.uuid4().hex[:8]}", period=10_000)
    cg.create(cpus=0.1, memory=None, weight=500)
    try:
        assert cg.limits() == (0.1, None)
        cpu_dir = cg.dirs[0]
        if cg.v2:
            assert (cpu_dir / "cpu.max").read_text().split() == ["1000", "10000"]
            assert (cpu_dir / "cpu.weight").read_text().strip() == "500"
        else:
            assert (cpu_dir / "cpu.cfs_period_us").read_text().strip() == "10000"
            assert (cpu_dir / "cpu.shares").read_text().strip() == "5120"
    finally:
        cg.destroy()


def test_a_quota_under_a_millisecond_gets_a_longer_period_not_more_cpu() -> None:
    """Linux takes no quota under 1 ms: 0.04 CPU at a 10 ms period is 1 ms per 25 ms."""
    cg = _cgroup.Cgroup(f"signup-lab-test/{uuid.uuid4().hex[:8]}", period=10_000)
    cg.create(cpus=0.04, memory=None)
    try:
        assert cg.limits() == (0.04, None)
    finally:
        cg.destroy()


@pytest.mark.parametrize(
    ("cpus", "period", "expected"),
    [
        (0.5, 100_000, (50_000, 100_000)),
        (0.1, 10_000, (1_000, 10_000)),
        (0.04, 10_000, (1_000, 25_000)),
        (0.0005, 10_000, (1_000, 1_000_000)),  # the kernel's longest period: as close as it gets
    ],
)
def test_cfs_keeps_the_share_within_the_kernels_bounds(
    cpus: float, period: int, expected: tuple[int, int]
) -> None:
    assert _cgroup.cfs(cpus, period) == expected


def test_a_process_over_its_quota_is_throttled_and_counted(group: _cgroup.Cgroup) -> None:
    # 0.25 CPU for a loop that wants a whole core: the quota runs out in most periods.
    before = group.throttling()
    subprocess.run(group.join_command(["python3", "-c", "sum(range(20_000_000))"]), check=True)
    after = group.throttling()
    assert after.periods > before.periods
    assert after.throttled > before.throttled
    assert after.throttled_seconds > before.throttled_seconds


def test_the_period_comes_from_the_environment_and_bad_values_are_refused() -> None:
    assert _cgroup.period_us({}) == DOCKER_PERIOD_US
    assert _cgroup.period_us({"LAB_CPU_PERIOD_US": "10000"}) == 10_000
    for bad in ("10ms", "999", "2000000", "-5"):
        with pytest.raises(ValueError, match="LAB_CPU_PERIOD_US"):
            _cgroup.period_us({"LAB_CPU_PERIOD_US": bad})
