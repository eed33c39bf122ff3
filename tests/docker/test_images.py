"""Which images the Docker test needs, and where a stand-in's base comes from: no engine."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lab.topology import REPO
from tests.docker import _images
from tests.docker._engine import EngineError


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("postgres:16.6-alpine", "postgres"),
        ("quay.io/prometheuscommunity/postgres-exporter:v0.16.0", "postgres-exporter"),
        ("ghcr.io/google/cadvisor:v0.60.5", "cadvisor"),
        ("busybox@sha256:abc", "busybox"),
    ],
)
def test_a_stand_in_is_named_after_the_repository(reference: str, name: str) -> None:
    assert _images.repository(reference) == name


def test_a_dockerfile_needs_its_bases_not_its_own_stages(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM --platform=linux/amd64 exporter/image:1.0 AS exporter\n"
        "FROM busybox:1.36.1\nCOPY --from=exporter /x /x\nfrom exporter\n"
    )
    assert _images.dockerfile_bases(dockerfile) == ["exporter/image:1.0", "busybox:1.36.1"]


def test_every_image_a_phase_pulls_has_a_stand_in() -> None:
    """A new or renamed image fails here first, naming itself, before any engine starts."""
    refs = _images.references()
    folders = {p.name for p in _images.STAND_INS.iterdir() if (p / "Dockerfile").is_file()}
    assert {_images.repository(r) for r in refs} - folders <= {"debian"}
    # What is left out is not pulled at all.
    assert not {_images.repository(r) for r in refs} & set(_images.LEFT_OUT)
    # The app's base comes from shared/Dockerfile, built unchanged.
    assert refs["python:3.11.11-slim-bookworm"] == "shared/Dockerfile"


def test_the_mirror_is_the_one_apt_uses_here(tmp_path: Path) -> None:
    one_line = tmp_path / "sources.list"
    one_line.write_text("# old\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n# a comment\nURIs: http://other.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert _images.debian_mirror([one_line]) == "http://mirror.example/debian"
    assert _images.debian_mirror([tmp_path / "nothing.list", deb822]) == (
        "http://other.example/debian"
    )
    with pytest.raises(EngineError, match="no Debian bookworm mirror"):
        _images.debian_mirror([tmp_path / "nothing.list"])


def test_the_app_image_installs_only_commands_it_can_run() -> None:
    """shared/Dockerfile copies the signup package alone; a console script of another package
    would be installed in the image and fail there with ModuleNotFoundError."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    copied = (REPO / "shared" / "Dockerfile").read_text()
    assert "COPY shared/signup ./shared/signup" in copied
    assert "shared/lab" not in copied
    outside = {name: target for name, target in scripts.items() if target.split(".")[0] != "signup"}
    assert not outside, f"console scripts the image cannot run: {outside}"
