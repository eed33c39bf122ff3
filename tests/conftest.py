"""Real throwaway servers for the whole test session: nothing here is a stand-in.

One PostgreSQL cluster per session in a temporary folder on a free port (fsync off: these
tests check behaviour, not durability), and a fresh database per test module that needs one,
dropped afterwards. Phase-level tests start their own stacks through the native runtime.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from lab._proc import ServerProcess, free_port, free_ports
from lab.native.components.redis import ping, server_command
from lab.native.components.redis_cluster import create_command, node_command
from lab.native.postgres import Cluster
from lab.runtime import LOOPBACK
from signup import migrate

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    # Outside pytest's folder (server_folder says why): the server runs as `postgres`.
    with server_folder("pg-") as root:
        cluster = Cluster(root / "data", free_port(), settings={"fsync": "off"})
        cluster.init()
        server = cluster.server(root / "postgres.log").start()
        try:
            yield cluster
        finally:
            server.stop()


@pytest.fixture(scope="module")
def database_url(pg_cluster: Cluster) -> Iterator[str]:
    """A migrated database of its own for one test module, dropped after it."""
    name = f"signup_test_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.ensure_database("signup", "signup-test-pw", name)
    migrate.apply(url)
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def clean_users(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE users RESTART IDENTITY")
    return database_url


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNUP_", "PROMETHEUS_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env.update(extra)
    return env


@dataclass
class RedisServer:
    port: int
    process: ServerProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis per test module (AOF on, as phase 3 runs it), on a free port."""
    root = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = ServerProcess(
        server_command(port, root / "data"),
        check=lambda: ping(port),
        port=port,
        log_file=root / "redis.log",
        env={},
    )
    process.start()
    try:
        yield RedisServer(port, process)
    finally:
        process.stop()


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> str:
    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    return redis_server.url


@contextmanager
def server_folder(prefix: str) -> Iterator[Path]:
    """A folder for servers that run as another account (PostgreSQL as `postgres`), outside
    pytest's: a pytest session starting elsewhere on the machine resets /tmp/pytest-of-<user>
    to 0700, and a PostgreSQL (re)started below it could no longer reach its data folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


@dataclass
class RedisCluster:
    """Six Redis Cluster nodes on loopback: three primaries, each with a replica."""

    nodes: list[RedisServer]

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def flush(self) -> None:
        """Empty every primary (replicas follow), and zero every node's command counters."""
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                if client.info("replication")["role"] == "master":
                    client.flushall()
                client.config_resetstat()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Redis Cluster per test module, formed by phase 4's own create-cluster.sh."""
    root = tmp_path_factory.mktemp("cluster")
    nodes: list[RedisServer] = []
    try:
        ports = free_ports(12)
        for port, bus in zip(ports[:6], ports[6:], strict=True):
            process = ServerProcess(
                node_command(LOOPBACK, port, root / str(port), node_timeout_ms=1000, bus_port=bus),
                check=lambda port=port: ping(port),  # type: ignore[misc]
                port=port,
                log_file=root / f"{port}.log",
                env={},
            )
            process.start()
            nodes.append(RedisServer(port, process))
        cluster = RedisCluster(nodes)
        subprocess.run(
            create_command(cluster.addresses.split(",")),
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield cluster
    finally:
        for node in nodes:
            node.process.stop()
