"""Compose and the native runtime must agree: same services, replicas and kernel-held limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lab.native import _cgroup
from lab.native.components import SKIPPED
from lab.native.stack import running
from lab.topology import load


@pytest.mark.skipif(_cgroup.available() is not None, reason="needs cgroups (root)")
def test_phase1_native_matches_compose(tmp_path: Path) -> None:
    topology = load("phase1", {})
    with running("phase1", tmp_path) as stack:
        entries = stack.supervisor.running
        started = Counter(e.spec.service for e in entries)
        expected = {n: s.replicas for n, s in topology.services.items() if n not in SKIPPED}
        assert dict(started) == expected
        for entry in entries:
            service = topology[entry.spec.service]
            assert entry.cgroup is not None, f"{entry.spec.name} runs outside a cgroup"
            assert entry.cgroup.limits() == (service.cpus, service.memory), entry.spec.name
