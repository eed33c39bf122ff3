"""The native nginx exporter as the supervisor runs it (its ProcSpec: command, environment,
stop signal) before a real nginx: it stops by its own graceful shutdown and that stop reads as
clean, while a crash still reads as one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab._proc import ServerProcess, free_port
from lab.native.components import nginx
from lab.runtime import CONTAINER_PORTS, Ports, ProcSpec, RunContext
from lab.topology import load


def process_for(spec: ProcSpec, log: Path) -> ServerProcess:
    if spec.prepare is not None:
        spec.prepare()
    return ServerProcess(
        spec.command,
        check=spec.check,
        port=spec.port,
        log_file=log,
        env=spec.env,
        timeout=30,
        stop_signal=spec.stop_signal,
    )


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    context = RunContext(load("phase2", {}), tmp_path / "run", Ports.free())
    context.members["app"] = [f"127.0.0.1:{free_port()}"]  # nginx needs an upstream
    return context


@pytest.fixture
def running_nginx(ctx: RunContext) -> Iterator[None]:
    [spec] = nginx.nginx(ctx, ctx.topology["nginx"])
    process = process_for(spec, ctx.log("nginx")).start()
    try:
        yield
    finally:
        process.stop()


def test_the_exporter_stops_by_its_own_shutdown_and_cleanly(
    ctx: RunContext, running_nginx: None
) -> None:
    [spec] = nginx.nginx_exporter(ctx, ctx.topology["nginx-exporter"])
    log = ctx.log("nginx-exporter")
    exporter = process_for(spec, log).start()
    metrics = httpx.get(f"{spec.url}/metrics", timeout=10).text
    assert "nginx_up 1" in metrics
    exporter.stop()  # raises if the exit reads as a failure
    # Ended by its own signal handler (graceful shutdown), not killed.
    assert "Signal received: terminated" in log.read_text()


def test_an_exporter_that_cannot_start_still_fails(ctx: RunContext) -> None:
    # No nginx answers at SCRAPE_URI: the exporter exits 1 at start, and so must the wrapper.
    [spec] = nginx.nginx_exporter(ctx, ctx.topology["nginx-exporter"])
    ctx.addresses[("nginx", CONTAINER_PORTS["nginx-status"])] = f"127.0.0.1:{free_port()}"
    assert spec.prepare is not None
    spec.prepare()
    result = subprocess.run(
        spec.command, env=spec.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Could not create Nginx Client" in result.stdout + result.stderr
