"""One Docker engine for the Docker tests (`make test-docker`), with every image they need.

The engine is the test's own (tests/docker/_engine.py) and the images come from a registry
where one answers, else from stand-ins built from Debian packages (tests/docker/_images.py).
DOCKER_TEST_IMAGES=registry or =stand-ins forces a source. Anything that keeps the engine from
starting fails the run: a skipped Docker test would read as a Docker path that works.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker import _images
from tests.docker._engine import Engine

log = logging.getLogger("docker-test")


def image_source(engine: Engine, refs: dict[str, str]) -> str:
    forced = os.environ.get("DOCKER_TEST_IMAGES", "")
    if forced not in ("", "registry", "stand-ins"):
        pytest.fail(f"DOCKER_TEST_IMAGES={forced!r} must be registry, stand-ins or empty")
    if forced:
        return forced
    return "registry" if _images.can_pull(engine, min(refs)) else "stand-ins"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.fail("the Docker tests start dockerd, which needs root: `make test-docker` as root")
    # Under /tmp, not pytest's folder: a unix socket's path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="lab-docker-"))
    engine = Engine(root)
    try:
        engine.start()
        refs = _images.references()
        source = image_source(engine, refs)
        log.info("images: %s (%d to get)", source, len(refs))
        if source == "registry":
            _images.pull(engine, refs)
        else:
            _images.build_stand_ins(engine, refs, root)
            log.info("left out of every phase: %s", "; ".join(_images.LEFT_OUT.values()))
        yield engine
    finally:
        try:
            engine.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
