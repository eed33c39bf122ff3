"""Every phase's compose file through the real Docker Compose (`docker compose config`).

With the defaults, with the scale model's quotas (shared/scale-model.env) and with other
values a user may set (REPLICAS, WRITER_REPLICAS, the *_CPUS quotas, APP_WORKERS): Compose
must accept the file, the resolved model must carry each value where it belongs, and it must
agree with what the native runtime reads from the same file (lab.topology).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lab.topology import PHASES, REPO, load, parse_memory
from tests.compose import _compose


def scale_model() -> dict[str, str]:
    values = {}
    for line in (REPO / "shared" / "scale-model.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


VARIABLE_SETS = {
    "defaults": {},
    "scale-model": scale_model(),
    "custom": {
        "REPLICAS": "5",
        "WRITER_REPLICAS": "2",
        "DB_CPUS": "0.7",
        "APP_CPUS": "0.3",
        "APP_WORKERS": "3",
        "PGBOUNCER_CPUS": "0.2",
        "NGINX_CPUS": "0.35",
        "REDIS_CPUS": "0.45",
        "WRITER_CPUS": "0.25",
        "POSTGRES_PASSWORD": "not-the-default",
        "LAB_PORT_DB": "25432",
    },
}


def cpus(svc: dict[str, Any]) -> float:
    return float(svc["deploy"]["resources"]["limits"]["cpus"])


def replicas(svc: dict[str, Any]) -> int:
    return int((svc.get("deploy") or {}).get("replicas", 1))


def db_port(svc: dict[str, Any]) -> str:
    return str(next(p["published"] for p in svc["ports"] if p["target"] == 5432))


# Where each variable must land: (service, what to read, phases that use it).
ALL = frozenset(PHASES)
WHERE: dict[str, tuple[str, Callable[[dict[str, Any]], object], frozenset[str]]] = {
    "DB_CPUS": ("db", cpus, ALL),
    "APP_CPUS": ("app", cpus, ALL),
    "APP_WORKERS": ("app", lambda s: s["environment"]["GUNICORN_WORKERS"], ALL),
    "PGBOUNCER_CPUS": ("pgbouncer", cpus, frozenset({"phase2", "phase3"})),
    "NGINX_CPUS": ("nginx", cpus, frozenset({"phase2", "phase3"})),
    "REDIS_CPUS": ("redis", cpus, frozenset({"phase3"})),
    "WRITER_CPUS": ("writer", cpus, frozenset({"phase3"})),
    "REPLICAS": ("app", replicas, frozenset({"phase2", "phase3"})),
    "WRITER_REPLICAS": ("writer", replicas, frozenset({"phase3"})),
    "LAB_PORT_DB": ("db", db_port, ALL),
}


@pytest.fixture(params=sorted(PHASES))
def phase(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(VARIABLE_SETS))
def variables(request: pytest.FixtureRequest) -> dict[str, str]:
    return VARIABLE_SETS[str(request.param)]


def test_the_binary_is_compose_2_24_or_later() -> None:
    result = _compose.run("phase1", ["version", "--short"], {})
    major, minor = (int(part) for part in result.stdout.strip().lstrip("v").split(".")[:2])
    assert (major, minor) >= (2, 24), result.stdout


def test_compose_accepts_the_file_and_carries_every_value(
    phase: str, variables: dict[str, str]
) -> None:
    model = _compose.config(phase, variables)
    services = model["services"]
    for name, (service, read, phases) in WHERE.items():
        if phase not in phases or name not in variables:
            continue
        got = read(services[service])
        raw = variables[name]
        want = float(raw) if isinstance(got, float) else int(raw) if isinstance(got, int) else raw
        assert got == want, f"{phase}: {name}={variables[name]} gave {service} {got!r}"


def test_compose_and_the_native_runtime_read_the_same_topology(
    phase: str, variables: dict[str, str]
) -> None:
    """lab.topology has its own reader of the compose files (it needs no Compose): it must
    resolve every service, replica count, limit, restart policy and variable as Compose."""
    services = _compose.config(phase, variables)["services"]
    topology = load(phase, variables)
    assert set(topology.services) == set(services)
    for name, native in topology.services.items():
        svc = services[name]
        limits = svc["deploy"]["resources"]["limits"]
        assert native.cpus == float(limits["cpus"]), f"{phase}/{name} cpus"
        assert native.memory == parse_memory(int(limits["memory"])), f"{phase}/{name} memory"
        assert native.replicas == replicas(svc), f"{phase}/{name} replicas"
        assert native.restart == svc.get("restart", "no"), f"{phase}/{name} restart"
        environment = {k: v or "" for k, v in (svc.get("environment") or {}).items()}
        for key, value in native.environment.items():
            assert environment.get(key) == value, f"{phase}/{name} {key}"


def test_the_database_is_published_on_loopback_at_the_native_port(phase: str) -> None:
    """The load tests count a Docker run's rows through this port, as natively."""
    (port,) = _compose.config(phase)["services"]["db"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "15432", 5432)


@pytest.mark.parametrize(
    ("name", "value"), [("REPLICAS", "three"), ("APP_CPUS", "lots"), ("WRITER_REPLICAS", "-")]
)
def test_compose_rejects_a_bad_value(name: str, value: str) -> None:
    """The check is real: a value Compose cannot use fails `config` (and so this suite)."""
    result = _compose.run("phase3", ["config", "--quiet"], {name: value})
    assert result.returncode != 0
    assert value in result.stderr, result.stderr
