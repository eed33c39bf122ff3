"""`python -m lab.native.render`: the committed Docker configs are what their templates render,
and a stale or missing one is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from lab.native import render
from lab.native.render import DockerRender

REPO = Path(__file__).resolve().parents[3]


def test_committed_renders_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lab.native.render", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_collect_finds_every_phase_prometheus_config() -> None:
    outputs = {item.output.relative_to(REPO).as_posix() for item in render.collect()}
    for phase in ("phase1", "phase2", "phase3"):
        assert f"monitoring/prometheus/generated/prometheus-{phase}.yml" in outputs


def job(tmp_path: Path, text: str = "phase={{ phase }} runtime={{ runtime }}\n") -> DockerRender:
    template = tmp_path / "conf.j2"
    template.write_text(text)
    return DockerRender(template, tmp_path / "out" / "conf", {"phase": "phase2"})


def test_render_adds_runtime_and_a_generated_header(tmp_path: Path) -> None:
    item = job(tmp_path)
    assert render.write([item]) == [item.output]
    lines = item.output.read_text().splitlines()
    assert lines[0].startswith("# GENERATED from ")
    assert "make render" in lines[0]
    assert lines[1] == "phase=phase2 runtime=docker"
    assert render.write([item]) == []  # unchanged: not rewritten
    assert render.stale([item]) == []


def test_stale_and_missing_renders_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = job(tmp_path)
    assert render.stale([item]) == [(item, "missing")]
    render.write([item])
    item.output.write_text(item.output.read_text() + "# edited by hand\n")
    assert render.stale([item]) == [(item, "differs from its template")]
    assert render._check([item]) == 1
    assert "run `make render`" in capsys.readouterr().err


def test_a_variable_missing_from_the_context_is_an_error(tmp_path: Path) -> None:
    item = job(tmp_path, "{{ not_in_the_context }}\n")
    with pytest.raises(jinja2.UndefinedError, match="not_in_the_context"):
        item.text()


def test_every_committed_config_has_one_render() -> None:
    # The explicit list replaced discovery (which checked for duplicates at run time).
    outputs = [item.output for item in render.collect()]
    assert len(outputs) == len(set(outputs))
    assert {o.name for o in outputs} >= {"nginx.conf", "pgbouncer.ini"}
