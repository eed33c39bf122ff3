"""Shared by the phase 2 tests: a bounded load through nginx, and reading what the parts saw.

The load is a fixed number of signups sent by a few threads, each with its own keep-alive
client and a client timeout, stopping at the count, at a deadline, or when told to: it can
never run away. Every answer is kept (status, body, when it started and ended) so a test can
ask what happened before and after it broke something.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from lab.native.stack import Stack, running

# The monitoring stack is not under test here; the exporters of phase 2 are.
SKIP_MONITORING = ("prometheus", "alertmanager", "grafana", "cadvisor", "postgres-exporter")
CLIENT_TIMEOUT = 15.0  # far above any answer the stack is configured to give (nginx: 10 s)


@contextmanager
def phase2(
    tmp_path: Path,
    *,
    variables: Mapping[str, str] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Stack]:
    with running(
        "phase2", tmp_path, variables=variables, environment=environment, skip=SKIP_MONITORING
    ) as stack:
        yield stack


def signup_body(tag: str, index: int) -> dict[str, str]:
    return {
        "email": f"{tag}-{index}-{uuid.uuid4().hex[:8]}@example.com",
        "first_name": "Load",
        "last_name": f"Test{index}",
    }


@dataclass(frozen=True)
class Outcome:
    email: str
    started: float
    ended: float
    status: int | None = None  # None: no answer (the error says why)
    body: object = None
    error: str | None = None


@dataclass
class Load:
    """`count` signups from `concurrency` threads; stops at the count, the deadline or stop()."""

    url: str
    count: int
    concurrency: int
    deadline_seconds: float
    tag: str = "load"
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._numbers = itertools.count()
        self._until = time.monotonic() + self.deadline_seconds

    def start(self) -> Load:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _next(self) -> int | None:
        with self._lock:
            index = next(self._numbers)
        if index >= self.count or self._stop.is_set() or time.monotonic() > self._until:
            return None
        return index

    def _worker(self) -> None:
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT) as client:
            while (index := self._next()) is not None:
                body = signup_body(self.tag, index)
                started = time.monotonic()
                try:
                    response = client.post("/signup", json=body)
                except httpx.HTTPError as exc:
                    outcome = Outcome(body["email"], started, time.monotonic(), error=repr(exc))
                else:
                    outcome = Outcome(
                        body["email"],
                        started,
                        time.monotonic(),
                        status=response.status_code,
                        body=_json(response),
                    )
                with self._lock:
                    self.outcomes.append(outcome)

    def stop(self) -> None:
        self._stop.set()

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self) -> list[Outcome]:
        for thread in self._threads:
            thread.join(timeout=self.deadline_seconds + CLIENT_TIMEOUT + 5)
            assert not thread.is_alive(), "a load thread outlived its deadline"
        return self.snapshot()

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, condition: Callable[[list[Outcome]], bool], timeout: float) -> None:
        """Until `condition(outcomes so far)` holds; fails after `timeout` seconds."""
        until = time.monotonic() + timeout
        while not condition(self.snapshot()):
            if time.monotonic() > until:
                raise AssertionError(f"condition not met within {timeout} s")
            if all(not t.is_alive() for t in self._threads):
                if not condition(self.snapshot()):
                    raise AssertionError("the load ended before the condition was met")
                return
            time.sleep(0.05)


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except json.JSONDecodeError:
        return response.text  # kept as text so an assertion can show the HTML it was


def is_json_error(outcome: Outcome) -> bool:
    return isinstance(outcome.body, dict) and isinstance(outcome.body.get("error"), str)


def sample(exposition: str, metric: str, /, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def rows_by_email(stack: Stack) -> dict[str, int]:
    """Every row of the users table, counted per email (directly, not through PgBouncer)."""
    with psycopg.connect(stack.database_url()) as conn:
        found = conn.execute("SELECT email, count(*) FROM users GROUP BY email").fetchall()
    return {email: count for email, count in found}


def emails(outcomes: Iterable[Outcome], status: int) -> list[str]:
    return [o.email for o in outcomes if o.status == status]


def pgbouncer_ini(stack: Stack) -> dict[str, str]:
    """The [pgbouncer] settings of the config the native PgBouncer really runs with."""
    values: dict[str, str] = {}
    for line in (stack.ctx.run_dir / "pgbouncer" / "pgbouncer.ini").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith((";", "#")):
            key, value = (part.strip() for part in line.split("=", 1))
            values[key] = value
    return values


def admin_console(stack: Stack) -> psycopg.Connection[tuple[object, ...]]:
    """PgBouncer's admin console as the stats user (the app's user, as the exporter does)."""
    env = stack.ctx.topology["pgbouncer"].environment
    return psycopg.connect(
        host="127.0.0.1",
        port=stack.ctx.ports.pgbouncer,
        user=env["DB_USER"],
        password=env["DB_PASSWORD"],
        dbname="pgbouncer",
        autocommit=True,
        connect_timeout=3,
        prepare_threshold=None,  # the console refuses prepared statements
    )
