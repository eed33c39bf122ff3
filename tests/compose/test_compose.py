"""What a reviewer would check by eye in every phase's compose file.

No engine runs here, but the real Compose binary does (tests/compose/_compose.py): the service
checks read the model `docker compose config` resolves, includes merged and variables at their
defaults. Every image is pinned, every service is limited and health-checked, ports are
published on loopback only, nothing that scales has a container_name, and depends_on waits for
health. The checks of paths as written (bind mounts, the include's env_file) read the YAML.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
import yaml

from lab.topology import PHASES, load_compose
from tests.compose import _compose

EXISTING = [phase for phase, folder in PHASES.items() if (folder / "compose.yaml").exists()]
# One-shot jobs: they run to completion, so "healthy" has no meaning for them.
ONESHOT = {"migrate", "claims", "cluster"}
PINNED = re.compile(r"^[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


@functools.cache
def _model(phase: str) -> dict[str, Any]:
    return _compose.config(phase)


def services(phase: str) -> dict[str, Any]:
    return dict(_model(phase)["services"])


@pytest.fixture(params=EXISTING)
def phase(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_phase_one_exists() -> None:
    assert "phase1" in EXISTING


def test_every_image_is_pinned(phase: str) -> None:
    for name, svc in services(phase).items():
        image = svc.get("image", "")
        assert image, f"{phase}/{name} has no image"
        assert PINNED.match(image), f"{phase}/{name}: {image!r} is not an image reference"
        tag = image.split("@")[0].rsplit(":", 1)
        assert len(tag) == 2 or "@sha256:" in image, f"{phase}/{name}: {image} has no tag"
        assert tag[-1] not in ("latest", "stable", "alpine"), f"{phase}/{name}: {image}"


def test_every_service_is_limited(phase: str) -> None:
    for name, svc in services(phase).items():
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("cpus"), f"{phase}/{name} has no CPU limit"
        assert limits.get("memory"), f"{phase}/{name} has no memory limit"


def test_long_running_services_have_healthchecks(phase: str) -> None:
    for name, svc in services(phase).items():
        if name in ONESHOT:
            assert svc.get("restart") == "no", f"{phase}/{name} is a job: restart must be no"
            continue
        check = svc.get("healthcheck", {})
        assert check.get("test"), f"{phase}/{name} has no healthcheck"
        assert not check.get("disable"), f"{phase}/{name} disables its healthcheck"


def test_dependencies_wait_for_health(phase: str) -> None:
    every = services(phase)
    for name, svc in every.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{phase}/{name}: depends_on needs conditions"
        for dep, rule in depends.items():
            assert dep in every, f"{phase}/{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in ONESHOT else "service_healthy"
            assert rule.get("condition") == expected, f"{phase}/{name} -> {dep}"


def test_ports_are_published_on_loopback_only(phase: str) -> None:
    for name, svc in services(phase).items():
        for port in svc.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip')}:{port}"
            assert spec.startswith("127.0.0.1:"), f"{phase}/{name} publishes {port}"


def test_nothing_has_a_container_name(phase: str) -> None:
    for name, svc in services(phase).items():
        assert "container_name" not in svc, f"{phase}/{name}: container_name breaks --scale"


def test_volumes_are_named_and_declared(phase: str) -> None:
    path = PHASES[phase] / "compose.yaml"
    declared: set[str] = set(load_compose(path, {}).get("volumes") or {})
    # Relative bind mounts resolve against the file that declares them, as compose does.
    files = [path]
    for included in yaml.safe_load(path.read_text()).get("include", []):
        inc = included if isinstance(included, str) else included["path"]
        files.append((path.parent / inc).resolve())
    for file in files:
        document = yaml.safe_load(file.read_text())
        declared |= set(document.get("volumes") or {})
        for name, svc in (document.get("services") or {}).items():
            for volume in svc.get("volumes", []):
                source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
                if source.startswith("."):  # the repo's config, mounted read-only
                    assert (file.parent / source).resolve().exists(), f"{file}: {name} {source}"
                    assert volume.endswith(":ro"), f"{file}: {name} mounts config writable"
                elif source.startswith("/"):  # host paths (cAdvisor) must not be writable
                    assert volume.endswith(":ro"), f"{file}: {name} mounts {source} writable"
                else:
                    assert source in declared, f"{file}: {name}: volume {source} not declared"


def test_phase_env_file_names_the_phase(phase: str) -> None:
    path = PHASES[phase] / "compose.yaml"
    includes = yaml.safe_load(path.read_text())["include"]
    env_file = path.parent / includes[0]["env_file"]
    assert f"LAB_PHASE={phase}" in env_file.read_text().split()


def test_the_app_image_is_built_from_the_shared_dockerfile(phase: str) -> None:
    app = services(phase)["app"]
    assert app["build"]["dockerfile"] == "shared/Dockerfile"
    assert (PHASES[phase] / app["build"]["context"] / "shared" / "Dockerfile").exists()
