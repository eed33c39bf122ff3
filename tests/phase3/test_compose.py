"""Phase 3's compose file, statically, for what the shared checks (tests/compose) do not know:
Redis durability, the writer's restart and metrics port, and that every service's settings are
valid for the code that reads them. The native builders read the same file, so these facts are
also what `make phase3` runs natively."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.native.components import redis as redis_component
from lab.runtime import CONTAINER_PORTS, Ports, RunContext
from lab.topology import PHASES, interpolate, load, load_compose
from signup.config import Settings

COMPOSE = PHASES["phase3"] / "compose.yaml"


def raw(service: str) -> dict[str, Any]:
    return dict(load_compose(COMPOSE, {})["services"][service])


def redis_conf() -> dict[str, str]:
    settings = {}
    for line in redis_component.CONFIG.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings[key] = value
    return settings


def test_redis_keeps_an_append_only_file() -> None:
    conf = redis_conf()
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    # A claim evicted under memory pressure would let a duplicate through.
    assert conf["maxmemory-policy"] == "noeviction"
    mounts = raw("redis")["volumes"]
    assert "./redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" in mounts
    assert any(volume.startswith("redis_data:") for volume in mounts)


@pytest.mark.parametrize("fsync", [None, "always", "no"])
def test_docker_and_native_redis_use_the_same_fsync_policy(fsync: str | None) -> None:
    env = {} if fsync is None else {"REDIS_APPENDFSYNC": fsync}
    command = [interpolate(word, env) for word in raw("redis")["command"]]
    docker = command[command.index("--appendfsync") + 1]
    native = redis_component.appendfsync(load("phase3", env)["redis"])
    assert docker == native == (fsync or "everysec")


def test_a_bad_fsync_policy_is_refused_before_anything_starts(tmp_path: Path) -> None:
    topology = load("phase3", {"REDIS_APPENDFSYNC": "sometimes"})
    ctx = RunContext(topology, tmp_path, Ports.free())
    with pytest.raises(ValueError, match="REDIS_APPENDFSYNC='sometimes' must be one of"):
        redis_component.redis(ctx, topology["redis"])


def test_writers_restart_scale_and_serve_metrics_where_prometheus_looks() -> None:
    topology = load("phase3", {"WRITER_REPLICAS": "2", "REPLICAS": "4"})
    writer = topology["writer"]
    assert writer.restart == "unless-stopped"
    assert (writer.replicas, topology["app"].replicas) == (2, 4)
    port = int(writer.environment["SIGNUP_WRITER_METRICS_PORT"])
    assert port == CONTAINER_PORTS["writer"]
    assert str(port) in " ".join(raw("writer")["healthcheck"]["test"])
    assert {"redis", "migrate", "pgbouncer"} <= set(writer.depends_on)


def test_every_signup_setting_is_valid_for_the_code() -> None:
    topology = load("phase3", {})
    app = Settings.from_env(topology["app"].environment)
    assert (app.store, app.redis_url) == ("queue", "redis://redis:6379/0")
    writer = Settings.from_env(topology["writer"].environment)
    assert writer.database_url.startswith("postgresql://signup:")
    assert "@pgbouncer:6432/" in writer.database_url
    assert writer.prepare_threshold is None  # PgBouncer in transaction mode
    assert writer.writer_claim_idle_ms > 10_000  # far above a batch of 1000 rows
    assert (
        app.stream
        == writer.stream
        == raw("redis-exporter")["environment"]["REDIS_EXPORTER_CHECK_SINGLE_STREAMS"]
    )


def test_phase_two_configs_are_mounted_not_copied() -> None:
    # Natively, phase 3 renders phase 2's templates (it has none of its own), so Docker must
    # mount phase 2's renders of them for both runtimes to run the same configs.
    mounts = {
        service: [v.split(":", 1)[0] for v in raw(service).get("volumes", [])]
        for service in ("nginx", "pgbouncer")
    }
    assert mounts["nginx"] == ["../phase2-replicas/nginx/nginx.conf"]
    assert mounts["pgbouncer"] == ["../phase2-replicas/pgbouncer/pgbouncer.ini"]
    assert not (PHASES["phase3"] / "nginx").exists()
    assert not (PHASES["phase3"] / "pgbouncer").exists()
