"""cAdvisor's series for a native process without a cgroup: read from its process tree."""

from __future__ import annotations

from pathlib import Path

from lab._proc import ServerProcess
from lab.native._container_metrics import ContainerCollector
from lab.native.supervisor import Running
from lab.runtime import ProcSpec


def test_a_process_without_a_cgroup_reports_its_tree_and_its_limits(tmp_path: Path) -> None:
    spec = ProcSpec("app-1", "app", ["sleep", "30"], lambda: True, None, cpus=0.5, memory=2**26)
    process = ServerProcess(
        spec.command, check=spec.check, port=None, log_file=tmp_path / "log", env={}
    )
    process.start()
    try:
        collected = {
            family.name: family.samples
            for family in ContainerCollector(100_000, lambda: [Running(spec, process)]).collect()
        }
    finally:
        process.stop()
    [memory] = collected["container_memory_usage_bytes"]
    assert memory.labels == {"name": "app-1", "container_label_com_docker_compose_service": "app"}
    assert memory.value > 0
    assert collected["container_spec_cpu_quota"][0].value == 50_000
    assert collected["container_spec_memory_limit_bytes"][0].value == 2**26
    assert not collected["container_cpu_cfs_periods"], "throttling needs a cgroup"
