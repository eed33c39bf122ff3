"""Every Prometheus config the lab uses passes `promtool check config` and labels every series
with its phase: the committed Docker renders, and native renders of each phase."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.native import render
from lab.native.components import monitoring
from lab.native.stack import with_environment
from lab.native.supervisor import build_specs
from lab.runtime import CONTAINER_PORTS, Ports, RunContext
from lab.topology import PHASES, load

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "monitoring" / "prometheus" / "generated"
EXISTING_PHASES = [p for p, folder in PHASES.items() if (folder / "compose.yaml").exists()]
RULES = sum(
    len(group["rules"])
    for path in (REPO / "monitoring" / "prometheus" / "rules").glob("*.yml")
    for group in yaml.safe_load(path.read_text())["groups"]
)


def check_config(path: Path) -> None:
    result = subprocess.run(
        ["/usr/bin/promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files were found and checked too, not silently matched by nothing.
    assert f"SUCCESS: {RULES} rules found" in result.stdout + result.stderr


def phase_labels(config: dict[str, Any]) -> dict[str, str]:
    """job -> the phase its relabelling sets."""
    labels = {}
    for job in config["scrape_configs"]:
        (rule,) = [r for r in job["relabel_configs"] if r.get("target_label") == "phase"]
        assert "source_labels" not in rule  # a constant from the config, never from the app
        labels[job["job_name"]] = rule["replacement"]
    return labels


@pytest.mark.parametrize("phase", list(render.DOCKER_SERVICES))
def test_docker_render_is_valid_and_follows_replicas_by_dns(phase: str) -> None:
    path = GENERATED / f"prometheus-{phase}.yml"
    assert path.read_text().startswith("# GENERATED")
    check_config(path)
    config = yaml.safe_load(path.read_text())
    assert set(phase_labels(config).values()) == {phase}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    app = jobs["signup-server"]
    assert app["dns_sd_configs"] == [
        {"names": ["app"], "type": "A", "port": 8000, "refresh_interval": "5s"}
    ]
    assert "static_configs" not in app
    if phase in ("phase3", "phase4"):
        assert jobs["signup-writer"]["dns_sd_configs"][0]["names"] == ["writer"]
    else:
        assert "signup-writer" not in jobs
    if phase == "phase4":  # every cluster node, through the one exporter
        redis = jobs["redis"]
        assert redis["metrics_path"] == "/scrape"
        assert redis["dns_sd_configs"][0]["names"] == ["redis-node"]
        relabel = {r["target_label"]: r.get("replacement") for r in redis["relabel_configs"]}
        assert relabel["__address__"] == f"redis-exporter:{CONTAINER_PORTS['redis-exporter']}"
        assert relabel["__param_target"] == "redis://${1}"
    # Every other job is one named service on its container port.
    for name, job in jobs.items():
        if name not in ("signup-server", "signup-writer") and not (
            phase == "phase4" and name == "redis"
        ):
            (target,) = job["static_configs"][0]["targets"]
            assert target.endswith(f":{CONTAINER_PORTS[monitoring.JOBS[name]]}")


@pytest.mark.parametrize("phase", EXISTING_PHASES)
def test_docker_scrape_list_matches_the_phase_compose_file(phase: str) -> None:
    services = load(phase, {}).services
    scraped = {svc for svc in monitoring.JOBS.values() if svc in services}
    assert scraped == set(render.DOCKER_SERVICES[phase])


def native_config(phase: str, run_dir: Path, interval: str = "1s") -> tuple[Path, RunContext]:
    topology = with_environment(load(phase, {}), {"prometheus": {"LAB_SCRAPE_INTERVAL": interval}})
    ctx = RunContext(topology, run_dir, Ports.free())
    specs = build_specs(ctx)
    # The supervisor registers its cAdvisor-named endpoint when it starts serving it.
    ctx.members["cadvisor"] = [f"127.0.0.1:{ctx.ports.containers}"]
    (spec,) = [s for s in specs if s.service == "prometheus"]
    assert spec.prepare is not None
    spec.prepare()
    return run_dir / "prometheus" / "prometheus.yml", ctx


@pytest.mark.parametrize("phase", EXISTING_PHASES)
def test_native_render_is_valid_and_scrapes_every_member(phase: str, tmp_path: Path) -> None:
    path, ctx = native_config(phase, tmp_path)
    check_config(path)
    config = yaml.safe_load(path.read_text())
    assert config["global"]["scrape_interval"] == "1s"
    assert set(phase_labels(config).values()) == {phase}
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    expected = {
        job: ctx.members[svc] for job, svc in monitoring.JOBS.items() if ctx.members.get(svc)
    }
    if phase == "phase4":  # the job `redis` scrapes every cluster node through the exporter
        expected["redis"] = ctx.members["redis-node"]
    assert targets == expected
    assert {"signup-server", "postgres", "cadvisor", "prometheus"} <= set(targets)
    on_hosts = set(ctx.members.get("redis-node", ())) if phase == "phase4" else set()
    assert all(
        t.startswith("127.0.0.1:")
        for members in targets.values()
        for t in members
        if t not in on_hosts
    )
    assert config["rule_files"] == [f"{monitoring.RULES}/*.yml"]


@pytest.mark.parametrize("bad", ["1", "0s", "fast", "5 s", "-1s"])
def test_a_bad_scrape_interval_fails_before_anything_starts(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LAB_SCRAPE_INTERVAL"):
        native_config("phase1", tmp_path, interval=bad)
