"""The Makefile's Docker paths (shared/docker.sh), run as a user runs them, without an engine.

`docker` on PATH is a stand-in whose `compose` is the real Compose binary (it logs each command
line it is given); with no engine, every command that needs one fails with Compose's own
"Cannot connect" error. That shows which commands make issues and that Compose accepted their
arguments; nothing here pretends a container ran (tests/docker/ runs them on a real engine).
A second stand-in reports another Compose version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.topology import PHASES
from tests._make import docker_without_compose, lab_environment, make
from tests.compose import _compose

PHASE1 = f"-f {PHASES['phase1'].name}/compose.yaml"


def docker_env(tmp_path: Path, version: str | None = None) -> tuple[dict[str, str], Path]:
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "compose.log"
    compose = (
        f'[ "$*" = "version --short" ] && echo {version} && exit 0; exit 99'
        if version
        else f'exec {_compose.binary()} "$@"'
    )
    shim = folder / "docker"
    shim.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = compose ]; then shift; echo "$*" >> {log}; {compose}; fi\n'
        'echo "no Docker engine in this test" >&2; exit 1\n'
    )
    shim.chmod(0o755)
    env = {**lab_environment(tmp_path / "run"), "RUNTIME": "docker"}
    env["PATH"] = f"{folder}:{env['PATH']}"
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    # No .venv and no Python: a Docker user has only Docker and make.
    env["VENV"] = str(tmp_path / "no-venv")
    env["PYTHON"] = str(tmp_path / "no-python3")
    return env, log


def commands(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("target", ["phase1", "status", "logs", "down", "clean"])
@pytest.mark.parametrize("version", ["2.23.3", "2.24.6", "2.24.7"])
def test_an_older_compose_stops_every_docker_target_with_one_clear_line(
    target: str, version: str, tmp_path: Path
) -> None:
    """2.24.0 to 2.24.6 read an included file's env_file from the working directory
    (docker/compose#11577), 2.24.7 breaks `-f dir/compose.yaml` includes (#11613)."""
    env, log = docker_env(tmp_path, version=version)
    result = make(target, env)
    assert result.returncode != 0
    assert f"Docker Compose {version} is too old" in result.stderr
    assert "2.25.0 or later" in result.stderr
    assert commands(log) == ["version --short"], "nothing else was asked of Compose"


@pytest.mark.parametrize("version", ["2.25.0", "v2.25.0", "2.30.0-desktop.1", "5.0.0"])
def test_2_25_and_later_pass_the_check(version: str, tmp_path: Path) -> None:
    env, log = docker_env(tmp_path, version=version)
    result = make("phase1", env)
    assert "too old" not in result.stderr
    assert commands(log)[1:] == [f"{PHASE1} config --services"]


def test_phase1_builds_what_changed_and_starts_every_service(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("phase1", env)
    up = commands(log)[-1]
    assert up.startswith(f"{PHASE1} up -d --wait --build ")
    assert set(up.split("--build ")[1].split()) == set(_compose.config("phase1")["services"])
    assert "Cannot connect to the Docker daemon" in result.stderr, result.stderr
    assert "not found" not in result.stderr, "the Docker path asked for Python"
    assert not Path(env["VENV"]).exists(), "the Docker path built a .venv"


def test_without_leaves_services_out_and_says_so(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("phase1", {**env, "WITHOUT": "grafana cadvisor"})
    assert "leaving out: grafana cadvisor" in result.stdout
    started = commands(log)[-1].split("--build ")[1].split()
    assert set(started) == set(_compose.config("phase1")["services"]) - {"grafana", "cadvisor"}


def test_without_a_service_the_phase_lacks_is_an_error(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("phase1", {**env, "WITHOUT": "grafana redis"})
    assert result.returncode != 0
    assert "WITHOUT: 'redis' is not a service of phase1-monolith/compose.yaml" in result.stderr
    assert not [c for c in commands(log) if " up " in c], "nothing was started"


@pytest.mark.parametrize("target", ["status", "logs"])
def test_an_engine_that_does_not_answer_is_an_error_not_nothing(
    target: str, tmp_path: Path
) -> None:
    env, log = docker_env(tmp_path)
    result = make(target, env, "SERVICE=app")
    asked = "--all" if target == "status" else "--status=running"
    assert commands(log)[1:] == [f"{PHASE1} ps --quiet {asked}"]
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert "nothing is running" not in result.stdout
    assert result.returncode != 0
    assert not Path(env["VENV"]).exists()


@pytest.mark.parametrize(("target", "flags"), [("down", ""), ("clean", " --volumes")])
def test_down_and_clean_take_down_every_phases_project(
    target: str, flags: str, tmp_path: Path
) -> None:
    env, log = docker_env(tmp_path)
    result = make(target, env)
    want = [
        command
        for folder in PHASES.values()
        for command in (
            f"-f {folder.name}/compose.yaml rm --stop --force --volumes",
            f"-f {folder.name}/compose.yaml down{flags}",
        )
    ]
    assert commands(log)[1:] == want
    # Compose read each file and accepted the flags; only the engine was missing.
    assert result.stderr.count("Cannot connect to the Docker daemon") == 2 * len(PHASES)
    assert result.returncode != 0
    assert not Path(env["VENV"]).exists()


def test_no_compose_plugin_says_what_is_missing(tmp_path: Path) -> None:
    env, _ = docker_env(tmp_path)
    docker_without_compose(tmp_path / "bin")
    result = make("status", env)
    assert result.returncode != 0
    assert "needs Docker Compose v2" in result.stderr


def test_down_without_compose_stops_the_native_runtime_and_says_so(tmp_path: Path) -> None:
    """RUNTIME empty, an engine but no Compose: down does the native part (here nothing runs)
    and reports Docker's lack in one line instead of failing. The native run really stopped is
    in tests/e2e/test_make_phase1.py."""
    env = {**lab_environment(tmp_path / "run"), "RUNTIME": ""}
    env["PATH"] = f"{docker_without_compose(tmp_path / 'bin')}:{env['PATH']}"
    result = make("down", env)
    assert result.returncode == 0, result.stderr
    assert "nothing is running" in result.stdout
    assert "no Compose v2 here" in result.stdout


@pytest.mark.parametrize("target", ["down", "clean"])
def test_a_failed_native_stop_fails_down_even_when_docker_has_nothing(
    target: str, tmp_path: Path
) -> None:
    """down and clean ask both runtimes; the first one failing must not be hidden by the
    second one succeeding."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\necho native stop failed >&2\nexit 3\n")
    python.chmod(0o755)
    env = {**lab_environment(tmp_path / "run"), "RUNTIME": "", "VENV": str(venv)}
    env["PATH"] = f"{docker_without_compose(tmp_path / 'bin')}:{env['PATH']}"
    result = make(target, env)
    assert "native stop failed" in result.stderr
    assert "no Compose v2 here" in result.stdout, "Docker's part still ran"
    assert result.returncode != 0
