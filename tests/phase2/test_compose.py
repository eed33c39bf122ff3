"""Phase 2's compose file: the facts phase 2 adds, and that the native runtime starts them.

The checks every phase shares (pinned images, limits, health checks, loopback-only ports, no
container_name, healthy depends_on) run over this file too, in tests/compose/. Here: replicas
and `--scale`, who talks to PgBouncer and who must not, the PgBouncer and nginx numbers that
must agree with the app's, the committed renders, and the running native stack against it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.native import _cgroup
from lab.native.components import SKIPPED, nginx
from lab.native.render import DockerRender, collect
from lab.native.stack import running
from lab.topology import PHASES, load, load_compose
from signup.config import Settings

COMPOSE = PHASES["phase2"] / "compose.yaml"


def raw_services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def ini(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith((";", "#"))}


def test_replicas_default_to_three_and_follow_the_variable() -> None:
    assert raw_services()["app"]["deploy"]["replicas"] == "${REPLICAS:-3}"
    assert load("phase2", {})["app"].replicas == 3
    assert load("phase2", {"REPLICAS": "5"})["app"].replicas == 5


def test_app_replicas_can_be_scaled() -> None:
    app = raw_services()["app"]
    # A published port or a fixed name would make a second replica fail to start.
    assert "ports" not in app
    assert "container_name" not in app
    nginx_service = load_compose(COMPOSE, {})["services"]["nginx"]
    # On loopback only, at the native runtime's port variable.
    assert nginx_service["ports"] == ["127.0.0.1:${LAB_PORT_HTTP:-8080}:8080"]


def test_the_apps_go_through_pgbouncer_and_the_migration_does_not() -> None:
    topology = load("phase2", {})
    app, migrate = topology["app"].environment, topology["migrate"].environment
    assert "@pgbouncer:6432/" in app["SIGNUP_DATABASE_URL"]
    assert Settings.from_env(app).prepare_threshold is None  # transaction pooling
    # The advisory lock of the migration lives as long as its session: straight to PostgreSQL.
    assert "@db:5432/" in migrate["SIGNUP_DATABASE_URL"]
    assert topology["app"].depends_on == ("migrate", "pgbouncer")


def test_no_trust_authentication() -> None:
    # PostgreSQL's image uses scram-sha-256 when a password is set, unless told otherwise.
    assert "POSTGRES_HOST_AUTH_METHOD" not in COMPOSE.read_text()
    settings = ini(PHASES["phase2"] / "pgbouncer" / "pgbouncer.ini")
    assert settings["auth_type"] in ("scram-sha-256", "md5")
    assert "auth_hba_file" not in settings
    services = load("phase2", {}).services
    assert services["pgbouncer"].environment["DB_PASSWORD"]


def test_pgbouncer_pool_fits_the_replicas() -> None:
    topology = load("phase2", {})
    app = topology["app"]
    settings = ini(PHASES["phase2"] / "pgbouncer" / "pgbouncer.ini")
    assert settings["pool_mode"] == "transaction"
    clients = app.replicas * int(app.environment["GUNICORN_WORKERS"])
    clients *= int(app.environment["SIGNUP_POOL_MAX"])
    # Every app connection, plus the exporter and an admin, fits under max_client_conn.
    assert clients + 2 <= int(settings["max_client_conn"])
    # Fewer server connections than clients: that is the point of the phase.
    servers = int(settings["default_pool_size"]) + int(settings["reserve_pool_size"])
    assert servers < clients
    assert int(settings["max_db_connections"]) == servers
    # A query waiting for a server connection fails before nginx's read timeout would.
    read_timeout = int(nginx.READ_TIMEOUT.removesuffix("s"))
    assert int(settings["query_wait_timeout"]) < read_timeout


def test_nginx_body_limit_is_the_apps() -> None:
    text = (PHASES["phase2"] / "nginx" / "nginx.conf").read_text()
    limit = Settings().max_body_bytes
    assert f"client_max_body_size {limit};" in text
    assert nginx.max_body_bytes(load("phase2", {})["app"]) == limit
    # Only failures before the request was sent may move a POST to another replica.
    retry = re.search(r"proxy_next_upstream ([^;]*);", text)
    assert retry is not None
    assert retry.group(1).split() == ["error", "timeout"]


@pytest.mark.parametrize("name", ["nginx.conf", "pgbouncer.ini"])
def test_committed_renders_are_current_and_mounted(name: str) -> None:
    renders: list[DockerRender] = [r for r in collect() if r.output.name == name]
    assert renders
    mounts = [
        volume.split(":")[0]
        for service in raw_services().values()
        for volume in service.get("volumes", [])
    ]
    for render in renders:
        assert render.output.read_text() == render.text(), f"run `make render`: {render.output}"
        relative = f"./{render.output.relative_to(PHASES['phase2'])}"
        assert relative in mounts, f"compose does not mount {relative}"


def test_docker_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    # Only what exists in the container and not here is swapped: its `nginx` account, the
    # `app` name Docker's DNS resolves, and the pid file's folder.
    text = (PHASES["phase2"] / "nginx" / "nginx.conf").read_text()
    text = text.replace("user nginx;", "user nobody nogroup;" if os.geteuid() == 0 else "")
    text = text.replace("server app:8000", "server 127.0.0.1:8000")
    text = text.replace("/var/run/nginx.pid", str(tmp_path / "nginx.pid"))
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    checked = subprocess.run(
        [*nginx.command(config)[:-2], "-t"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.e2e
def test_native_runtime_starts_what_compose_describes(tmp_path: Path) -> None:
    # REPLICAS=2: the variable reaches the native runtime as it reaches `docker compose`.
    topology = load("phase2", {"REPLICAS": "2"})
    expected = {n: s.replicas for n, s in topology.services.items() if n not in SKIPPED}
    assert expected["app"] == 2
    with running("phase2", tmp_path, variables={"REPLICAS": "2"}) as stack:
        entries = stack.supervisor.running
        assert dict(Counter(e.spec.service for e in entries)) == expected
        assert len(stack.ctx.members["app"]) == 2
        upstream = (tmp_path / "nginx" / "nginx.conf").read_text()
        assert all(f"server {m} " in upstream for m in stack.ctx.members["app"])
        if _cgroup.available() is not None:
            pytest.skip(f"limits not applied here: {_cgroup.available()}")
        for entry in entries:
            service = topology[entry.spec.service]
            assert entry.cgroup is not None, f"{entry.spec.name} runs outside a cgroup"
            assert entry.cgroup.limits() == (service.cpus, service.memory), entry.spec.name
