"""The Makefile's Docker paths, run as a user runs them, up to where an engine is needed.

`docker` on PATH is a stand-in whose `compose` is the real Compose binary (it logs each command
line it is given); there is no engine, so every command that needs one fails with Compose's own
"Cannot connect" error. That shows which commands make issues and that Compose accepted their
arguments; nothing here pretends a container ran. A second stand-in reports an older Compose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.topology import PHASES
from tests._make import lab_environment, make
from tests.compose import _compose


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
    return env, log


def commands(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("target", ["phase1", "status", "logs", "down", "clean"])
def test_an_older_compose_stops_every_docker_target_with_one_clear_line(
    target: str, tmp_path: Path
) -> None:
    env, log = docker_env(tmp_path, version="2.23.3")
    result = make(target, env)
    assert result.returncode != 0
    assert "Docker Compose 2.23.3 is too old" in result.stderr
    assert "2.24 or later" in result.stderr
    assert commands(log) == ["version --short"], "nothing else was asked of Compose"


@pytest.mark.parametrize("version", ["2.24.0", "v2.24.6", "2.30.0-desktop.1", "5.0.0"])
def test_2_24_and_later_pass_the_check(version: str, tmp_path: Path) -> None:
    env, log = docker_env(tmp_path, version=version)
    result = make("phase1", env)
    assert "too old" not in result.stderr
    assert commands(log)[1:] == [f"-f {PHASES['phase1'].name}/compose.yaml up -d --wait"]


def test_no_compose_plugin_says_what_is_missing(tmp_path: Path) -> None:
    env, _ = docker_env(tmp_path)
    (tmp_path / "bin" / "docker").write_text(
        "#!/bin/sh\necho \"docker: 'compose' is not a docker command.\" >&2; exit 1\n"
    )
    result = make("status", env)
    assert result.returncode != 0
    assert "needs Docker Compose v2" in result.stderr


def test_the_real_compose_passes_the_version_check(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("phase1", env)
    assert "too old" not in result.stderr
    assert commands(log)[-1] == f"-f {PHASES['phase1'].name}/compose.yaml up -d --wait"
    assert "Cannot connect to the Docker daemon" in result.stderr, result.stderr


def test_status_asks_compose_not_the_native_run(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("status", env)
    assert "native" not in result.stdout
    assert commands(log)[1:] == ["ls --format json"]
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert result.returncode != 0, "an engine that does not answer is an error, not 'nothing'"


def test_logs_asks_compose(tmp_path: Path) -> None:
    env, log = docker_env(tmp_path)
    result = make("logs", env, "SERVICE=app")
    assert commands(log)[1:] == ["ls --format json"]
    assert "Cannot connect to the Docker daemon" in result.stderr


@pytest.mark.parametrize(("target", "flags"), [("down", ""), ("clean", " --volumes")])
def test_down_and_clean_take_down_every_phases_project(
    target: str, flags: str, tmp_path: Path
) -> None:
    env, log = docker_env(tmp_path)
    result = make(target, env)
    want = [f"-f {folder}/compose.yaml down{flags}" for folder in PHASES.values()]
    assert commands(log)[1:] == want
    # Compose read each file and accepted the flags; only the engine was missing.
    assert result.stderr.count("Cannot connect to the Docker daemon") == len(PHASES)
    assert result.returncode != 0
