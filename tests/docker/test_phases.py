"""Every phase under Docker, driven as a user drives it: `make phaseN` with RUNTIME=docker.

Then what the user would look at: a signup on 127.0.0.1 answered and in PostgreSQL, each app's
own /metrics counting it, Prometheus scraping every target of the phase; phase 2's requests
spread over its replicas; phase 3's writer stopped and started by compose losing nothing; then
`make status`, `make logs SERVICE=app`, `make down` (no container left), `make clean` (no volume
left). Traffic goes to 127.0.0.1 only, a few dozen requests: a functional test, not a load test.
The published ports are free ones (LAB_PORT_*, which the compose files read).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
import yaml

from lab._proc import free_ports
from lab.topology import PHASES
from tests._make import lab_environment, make
from tests._probe import parse, wait_until
from tests.docker import _images
from tests.docker._engine import Engine

pytestmark = pytest.mark.docker
REPLICAS = 3
SIGNUPS = 30
CREATED = {"phase1": 201, "phase2": 201, "phase3": 202, "phase4": 202}
PROMETHEUS = PHASES["phase1"].parent / "monitoring/prometheus/generated"


@dataclass
class User:
    """A user's shell: the Makefile's environment, pointed at the test's engine and ports."""

    env: dict[str, str]
    engine: Engine

    def port(self, name: str) -> int:
        return int(self.env[f"LAB_PORT_{name.upper()}"])

    def compose(self, phase: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-f", str(PHASES[phase] / "compose.yaml"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def make(self, target: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = make(target, self.env, *args)
        assert result.returncode == 0, f"make {target}: {result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="module")
def user(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    env = engine.environment(lab_environment(tmp_path_factory.mktemp("run")))
    env["RUNTIME"] = "docker"
    env.pop("LAB_PORTS")  # the native runtime's "free"; compose reads each LAB_PORT_* itself
    names = ("http", "db", "prometheus", "alertmanager", "grafana", "containers")
    ports = free_ports(len(names))
    env.update({f"LAB_PORT_{n.upper()}": str(p) for n, p in zip(names, ports, strict=True)})
    env.update(WITHOUT=" ".join(_images.LEFT_OUT), REPLICAS=str(REPLICAS))
    user = User(env, engine)
    try:
        yield user
    finally:
        make("clean", env)


def signup(user: User, phase: str, tag: str, count: int = SIGNUPS) -> list[str]:
    emails = [f"{tag}-{i}@example.com" for i in range(count)]
    with httpx.Client(base_url=f"http://127.0.0.1:{user.port('http')}", timeout=10) as client:
        for email in emails:
            body = {"email": email, "first_name": "Ada", "last_name": "Lovelace"}
            answer = client.post("/signup", json=body)
            assert answer.status_code == CREATED[phase], answer.text
        duplicate = client.post("/signup", json={**body, "email": emails[0].upper()})
        assert (duplicate.status_code, duplicate.json()) == (409, {"error": "email already exists"})
    return emails


def rows(user: User, emails: list[str]) -> int:
    url = f"postgresql://signup:signup@127.0.0.1:{user.port('db')}/signup"
    with psycopg.connect(url, connect_timeout=5) as conn:
        cur = conn.execute("SELECT count(*) FROM users WHERE email = ANY(%s)", (emails,))
        found = cur.fetchone()
    return int(found[0]) if found else 0


def app_metrics(user: User, phase: str, index: int) -> dict[str, float]:
    """One app container's own /metrics, read inside it (replicas publish no port)."""
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    result = user.compose(phase, "exec", "-T", "--index", str(index), "app", "python", "-c", fetch)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def prometheus(user: User, path: str, **params: str) -> object:
    url = f"http://127.0.0.1:{user.port('prometheus')}/api/v1/{path}"
    answer = httpx.get(url, params=params, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def jobs(phase: str) -> set[str]:
    """The scrape jobs of the phase's Prometheus config, less the services left out."""
    config = yaml.safe_load((PROMETHEUS / f"prometheus-{phase}.yml").read_text())
    return {job["job_name"] for job in config["scrape_configs"]} - set(_images.LEFT_OUT)


def targets_not_up(user: User, phase: str, replicas: int) -> list[str]:
    """What keeps Prometheus from scraping the whole phase: a job with no target yet, fewer
    app targets than replicas, or a target that is not up."""
    data = prometheus(user, "targets")
    assert isinstance(data, dict)
    found: dict[str, list[str]] = {}
    for target in data["activeTargets"]:
        found.setdefault(target["labels"]["job"], []).append(
            "up" if target["health"] == "up" else f"{target['scrapeUrl']}: {target['lastError']}"
        )
    problems = [f"{job}: no target" for job in sorted(jobs(phase) - set(found))]
    if len(found.get("signup-server", [])) != replicas:
        problems.append(f"signup-server: {found.get('signup-server')} for {replicas} replicas")
    problems += [
        f"{job} {health}"
        for job, healths in found.items()
        if job in jobs(phase)
        for health in healths
        if health != "up"
    ]
    return problems


def counted_by_prometheus(user: User, query: str) -> float | None:
    data = prometheus(user, "query", query=query)
    assert isinstance(data, dict)
    return float(data["result"][0]["value"][1]) if data["result"] else None


def containers(user: User, phase: str) -> list[str]:
    project = f"label=com.docker.compose.project=signup-{phase}"
    out = user.engine.docker("ps", "--all", "--quiet", "--filter", project).stdout
    return out.split()


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_phase_under_docker_as_a_user_runs_it(user: User, phase: str) -> None:
    try:
        # Inside: a phase that does not come up is taken down too, and says what it logged,
        # or the next test finds its ports taken. Phase 4 with two spare nodes, for
        # `make cluster-grow`.
        up = user.make(phase, *(["REDIS_NODES=8"] if phase == "phase4" else []))
        assert "leaving out: grafana cadvisor" in up.stdout
        emails = signup(user, phase, f"{phase}-docker")
        wait_until(lambda: rows(user, emails) == SIGNUPS, 60, f"{SIGNUPS} rows in PostgreSQL")

        replicas = 1 if phase == "phase1" else REPLICAS
        created = f'signup_requests_total{{status_code="{CREATED[phase]}"}}'
        counted = [app_metrics(user, phase, i).get(created, 0) for i in range(1, replicas + 1)]
        assert sum(counted) == SIGNUPS, f"each app's own count: {counted}"
        assert all(counted), f"nginx sent every replica a share: {counted}"

        try:
            wait_until(lambda: not targets_not_up(user, phase, replicas), 90)
        except AssertionError:
            raise AssertionError(f"not scraped: {targets_not_up(user, phase, replicas)}") from None
        query = f'sum(signup_requests_total{{phase="{phase}",status_code="{CREATED[phase]}"}})'
        wait_until(lambda: counted_by_prometheus(user, query) == SIGNUPS, 30, query)

        if phase == "phase3":
            writer_stopped_and_started_loses_nothing(user)
        if phase == "phase4":
            the_cluster_grows_by_its_spares(user)

        status = user.make("status")
        assert f"compose project signup-{phase}" in status.stdout
        logs = user.make("logs", "SERVICE=app")
        assert "app-1" in logs.stdout or "app" in logs.stdout.split("|", 1)[0]
    except AssertionError as exc:
        logged = user.compose(phase, "logs", "--tail", "40", "--no-color").stdout
        raise AssertionError(f"{exc}\n--- what the containers logged:\n{logged}") from None
    finally:
        down = make("down", user.env)
    assert down.returncode == 0, down.stderr
    assert containers(user, phase) == [], "make down left containers behind"


def writer_stopped_and_started_loses_nothing(user: User) -> None:
    stopped = user.compose("phase3", "stop", "writer")
    assert stopped.returncode == 0, stopped.stderr
    emails = signup(user, "phase3", "while-the-writer-is-down")
    assert rows(user, emails) == 0, "nothing drains the stream while the writer is stopped"
    started = user.compose("phase3", "start", "writer")
    assert started.returncode == 0, started.stderr
    wait_until(lambda: rows(user, emails) == SIGNUPS, 60, "the backlog drained into PostgreSQL")


def the_cluster_grows_by_its_spares(user: User) -> None:
    """`make cluster-grow`: nodes 7 and 8 join as a fourth primary and its replica, the slots
    are rebalanced onto it, and signups go on landing as rows."""
    grown = user.make("cluster-grow")
    assert "cluster grown" in grown.stdout, grown.stdout[-2000:]
    view = user.compose("phase4", "exec", "-T", "redis-node", "redis-cli", "cluster", "nodes")
    assert view.returncode == 0, view.stderr
    primaries = [line for line in view.stdout.splitlines() if "master" in line.split()[2]]
    # A primary with slots lists them after its eighth field.
    assert len(primaries) == 4, view.stdout
    assert all(len(line.split()) > 8 for line in primaries), view.stdout
    emails = signup(user, "phase4", "after-the-cluster-grew")
    wait_until(lambda: rows(user, emails) == SIGNUPS, 60, "signups after growing became rows")
    again = make("cluster-grow", user.env)
    assert again.returncode != 0
    assert "0 spare node(s) of 8, and a new primary needs two" in again.stderr


def test_clean_deletes_every_volume(user: User) -> None:
    user.make("phase1")
    before = volumes(user)
    assert "signup-lab-prometheus" in before
    assert "signup-phase1_postgres_data" in before
    user.make("clean")
    assert volumes(user) == [], "make clean left volumes behind"


def volumes(user: User) -> list[str]:
    out = user.engine.docker("volume", "ls", "--format", "{{json .Name}}").stdout
    return sorted(json.loads(line) for line in out.splitlines())
