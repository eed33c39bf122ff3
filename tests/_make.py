"""Running make targets as a user does, in a run folder and on ports of the test's own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO


def make(target: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), target, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def lab_environment(run_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus the lab's knobs, with its own run folder and free
    ports, so the test can run beside a lab someone started by hand."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "SIGNUP_"))}
    env.update(LAB_RUN_DIR=str(run_dir), LAB_PORTS="free", RUNTIME="native", **extra)
    return env


def docker_without_compose(folder: Path) -> Path:
    """A `docker` on PATH whose engine answers `docker info` but that has no Compose v2 plugin:
    the folder to put first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "docker"
    shim.write_text(
        "#!/bin/sh\n"
        '[ "$1" = info ] && exit 0\n'
        "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1\n"
    )
    shim.chmod(0o755)
    return folder
