"""The pins every install uses: made from pip's resolver report, and covering pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from typing import Any

from lab.install import lock
from lab.topology import REPO

CONSTRAINTS = REPO / "shared" / "constraints.txt"


def name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_pins_are_the_resolved_versions_without_the_project_itself() -> None:
    report: dict[str, Any] = {
        "install": [
            {"metadata": {"name": "signup-scaling-lab", "version": "0.1.0"}, "is_direct": True},
            {"metadata": {"name": "PyYAML", "version": "6.0.2"}, "is_direct": False},
            {"metadata": {"name": "uvicorn_worker", "version": "0.4.0"}},
        ]
    }
    assert lock.pins(report) == [
        f"pip=={version('pip')}",
        "pyyaml==6.0.2",
        "uvicorn-worker==0.4.0",
    ]


def test_every_dependency_of_pyproject_is_pinned() -> None:
    # A dependency added to pyproject.toml without `make lock` would install unpinned.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {name(r) for r in extra}
    wanted.discard("signup-scaling-lab")
    pinned = {name(line) for line in CONSTRAINTS.read_text().splitlines() if "==" in line}
    assert wanted <= pinned, f"run `make lock`: {sorted(wanted - pinned)} not pinned"
