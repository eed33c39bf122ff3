from __future__ import annotations

from pathlib import Path

import pytest

from lab.native.components import BUILDERS, SKIPPED
from lab.topology import PHASES, TopologyError, interpolate, load, parse_memory

EXISTING = [phase for phase, folder in PHASES.items() if (folder / "compose.yaml").exists()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512M", 512 * 2**20), ("1g", 2**30), ("64m", 64 * 2**20), ("1024", 1024), (2048, 2048)],
)
def test_parse_memory(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "12 parsecs", "-5M", ""])
def test_parse_memory_rejects(text: str) -> None:
    with pytest.raises(TopologyError):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("pre-${A}-post", {"A": "1"}, "pre-1-post"),
        ("cost $$5", {}, "cost $5"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_interpolate_required_variable() -> None:
    with pytest.raises(TopologyError, match="LAB_PHASE"):
        interpolate("${LAB_PHASE:?set by the phase}", {})


def test_phase1_facts() -> None:
    topology = load("phase1", {})
    app, db = topology["app"], topology["db"]
    assert (db.cpus, db.memory) == (1.0, 512 * 2**20)
    assert app.replicas == 1
    assert app.environment["SIGNUP_DATABASE_URL"] == "postgresql://signup:signup@db:5432/signup"
    assert topology["migrate"].depends_on == ("db",)


def test_unknown_phase() -> None:
    with pytest.raises(TopologyError, match="phase9"):
        load("phase9", {})


@pytest.mark.parametrize("phase", EXISTING)
def test_every_compose_service_has_a_native_equivalent(phase: str) -> None:
    for name in load(phase, {}).services:
        assert name in BUILDERS or name in SKIPPED, f"{phase}: {name} cannot run natively"


def test_bad_replicas_value(tmp_path: Path) -> None:
    if "phase2" not in EXISTING:
        pytest.skip("phase 2 not built yet")
    with pytest.raises(TopologyError, match="replicas"):
        load("phase2", {"REPLICAS": "many"})


def test_cpu_quotas_are_variables_with_the_defaults_as_written() -> None:
    default = load("phase3", {})
    assert (default["db"].cpus, default["app"].cpus, default["writer"].cpus) == (1.0, 1.0, 0.5)
    assert default["app"].environment["GUNICORN_WORKERS"] == "1"
    scaled = load("phase3", {"DB_CPUS": "0.15", "APP_CPUS": "0.1", "APP_WORKERS": "2"})
    assert (scaled["db"].cpus, scaled["app"].cpus) == (0.15, 0.1)
    assert scaled["app"].environment["GUNICORN_WORKERS"] == "2"


@pytest.mark.parametrize("value", ["half", "0", "-1", "0.001"])
def test_a_cpu_quota_that_is_not_a_cpu_count_is_refused(value: str) -> None:
    with pytest.raises(TopologyError, match=r"service db: cpus .* is not a CPU count"):
        load("phase1", {"DB_CPUS": value})
