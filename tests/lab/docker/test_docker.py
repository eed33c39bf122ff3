"""lab.docker without an engine: its parsers on output in the shape Compose prints, the state a
Docker phase gives the load tests, and what it does when no engine answers.

The `ps`/`ls` strings below are written in the documented `--format json` shape (fields of
Compose's ContainerSummary); they test the parsers only. No test here pretends a container ran:
the commands that need an engine are run against the real Compose binary, and fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab import docker, loadtest, state
from lab.loadtest import soak
from lab.state import RunState
from tests.compose import _compose

LS = json.dumps(
    [
        {"Name": "other-project", "Status": "running(1)", "ConfigFiles": "/x/compose.yaml"},
        {"Name": "signup-phase2", "Status": "running(11), exited(1)", "ConfigFiles": "/r/c.yaml"},
    ]
)


def ps_line(service: str, index: int = 1, **fields: object) -> dict[str, object]:
    item: dict[str, object] = {
        "ID": f"{service}{index}",
        "Name": f"signup-phase2-{service}-{index}",
        "Project": "signup-phase2",
        "Service": service,
        "State": "running",
        "Health": "healthy",
        "ExitCode": 0,
        "Publishers": None,
    }
    item.update(fields)
    return item


def published(target: int, port: int, url: str = "127.0.0.1") -> list[dict[str, object]]:
    return [{"URL": url, "TargetPort": target, "PublishedPort": port, "Protocol": "tcp"}]


PHASE2 = [
    ps_line("db", Publishers=published(5432, 15432)),
    ps_line("migrate", State="exited", Health="", ExitCode=0),
    ps_line("app", 1, Publishers=[{"URL": "", "TargetPort": 8000, "PublishedPort": 0}]),
    ps_line("app", 2),
    ps_line("nginx", Publishers=published(8080, 8080)),
    ps_line("prometheus", Publishers=published(9090, 9090)),
]


def test_projects_map_to_phases_by_the_compose_files_names() -> None:
    assert [docker.project(p) for p in ("phase1", "phase2", "phase3")] == [
        "signup-phase1",
        "signup-phase2",
        "signup-phase3",
    ]
    assert docker.phase_of("signup-phase3") == "phase3"
    assert docker.phase_of("other-project") is None


def test_ls_lists_project_names() -> None:
    assert docker.parse_ls(LS) == ["other-project", "signup-phase2"]
    assert docker.parse_ls("") == []
    assert docker.parse_ls("[]") == []


@pytest.mark.parametrize("shape", ["lines", "array"])
def test_ps_is_read_as_json_lines_and_as_the_older_array(shape: str) -> None:
    text = (
        "\n".join(json.dumps(item) for item in PHASE2) if shape == "lines" else json.dumps(PHASE2)
    )
    containers = docker.parse_ps(text)
    assert [c.service for c in containers] == ["db", "migrate", "app", "app", "nginx", "prometheus"]
    db = containers[0]
    assert db.published(5432) == docker.Publisher("127.0.0.1", 15432, 5432)
    assert containers[2].publishers == (), "an exposed, unpublished port is no address"
    assert containers[1].state == "exited"


def test_a_wildcard_bind_is_reached_on_loopback() -> None:
    (c,) = docker.parse_ps(json.dumps([ps_line("nginx", Publishers=published(8080, 8080, ""))]))
    assert c.published() == docker.Publisher("127.0.0.1", 8080, 8080)


def test_a_docker_phase_reads_like_a_native_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "s3cret")
    running = docker.run_state("phase2", docker.parse_ps(json.dumps(PHASE2)))
    assert running.runtime == "docker"
    assert running.phase == "phase2"
    assert running.entry_url == "http://127.0.0.1:8080", "nginx, as natively"
    assert running.url("prometheus") == "http://127.0.0.1:9090"
    # The migrate service's URL, at the published port: as the native run's database_url.
    assert running.database_url == "postgresql://signup:s3cret@127.0.0.1:15432/signup"
    migrate = next(s for s in running.services if s.service == "migrate")
    assert (migrate.oneshot, migrate.exit_code) == (True, 0)
    assert running.pids() == {}, "no process of this machine to sample"


def test_phase1s_entry_is_the_app() -> None:
    ps = [
        ps_line("app", Name="signup-phase1-app-1", Publishers=published(8000, 8080)),
        ps_line("db", Name="signup-phase1-db-1", Publishers=published(5432, 15432)),
    ]
    running = docker.run_state("phase1", docker.parse_ps(json.dumps(ps)), env={})
    assert running.entry_url == "http://127.0.0.1:8080"
    assert running.database_url == "postgresql://signup:signup@127.0.0.1:15432/signup"


def test_no_published_database_no_row_count() -> None:
    running = docker.run_state("phase1", docker.parse_ps(json.dumps([ps_line("app")])), env={})
    assert running.database_url is None


def test_the_load_tests_plan_against_a_docker_phase(tmp_path: Path) -> None:
    running = docker.run_state("phase2", docker.parse_ps(json.dumps(PHASE2)), env={})
    closed = "http://127.0.0.1:9"  # nothing answers: no Prometheus
    p = loadtest.plan(
        "target",
        {"TARGET": "1k", "PROMETHEUS_URL": closed},
        results=tmp_path,
        state=running,
    )
    assert (p.phase, p.base_url) == ("phase2", "http://127.0.0.1:8080")
    assert p.database_url == "postgresql://signup:signup@127.0.0.1:15432/signup", "rows counted"


def test_the_soak_refuses_a_docker_phase() -> None:
    running = docker.run_state("phase3", [], env={})
    with pytest.raises(soak.SoakError, match="native phase3"):
        soak.check_native("phase3", running)


def test_the_load_tests_ask_docker_only_when_nothing_runs_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_docker = docker.run_state("phase1", [], env={})
    asked: list[bool] = []

    def fake_running() -> RunState:
        asked.append(True)
        return from_docker

    monkeypatch.setattr(docker, "running", fake_running)
    assert loadtest.running_stack(tmp_path, {}) is from_docker
    assert loadtest.running_stack(tmp_path, {"RUNTIME": "docker"}) is from_docker
    assert loadtest.running_stack(tmp_path, {"RUNTIME": "native"}) is None
    assert len(asked) == 2
    assert state.read(tmp_path) is None


@pytest.fixture
def compose_as_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` on PATH whose `compose` is the real Compose binary; there is no engine."""
    folder = tmp_path / "bin"
    folder.mkdir()
    shim = folder / "docker"
    shim.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = compose ] && shift && exec {_compose.binary()} "$@"\n'
        'echo "no Docker engine in this test" >&2; exit 1\n'
    )
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return folder


@pytest.mark.usefixtures("compose_as_docker")
def test_without_an_engine_nothing_runs_with_docker() -> None:
    with pytest.raises(docker.DockerError, match="ls --format json"):
        docker.running_phases()
    assert docker.running() is None


def test_without_docker_nothing_runs_with_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert docker.running() is None
    assert docker.main(["status"]) == 1
