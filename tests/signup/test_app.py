"""The HTTP contract, through the app, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from signup.app import create_app
from signup.config import Settings

VALID = {"email": "Grace@Example.com", "first_name": " Grace ", "last_name": "Hopper"}


@pytest.fixture
def client(clean_users: str) -> Iterator[TestClient]:
    settings = Settings(database_url=clean_users, pool_min=1, pool_max=4, max_body_bytes=1024)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def rows(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT email, first_name, last_name FROM users").fetchall()


def test_welcome(client: TestClient) -> None:
    response = client.get("/")
    assert (response.status_code, response.json()) == (200, {"message": "welcome"})


def test_signup_creates_the_row_and_returns_it(client: TestClient, clean_users: str) -> None:
    response = client.post("/signup", json=VALID)
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "user created successfully"
    user = body["user"]
    assert set(user) == {"id", "email", "first_name", "last_name", "created_at", "updated_at"}
    assert (user["email"], user["first_name"], user["last_name"]) == (
        "grace@example.com",
        "Grace",
        "Hopper",
    )
    assert isinstance(user["id"], int)
    assert rows(clean_users) == [("grace@example.com", "Grace", "Hopper")]


def test_duplicate_is_case_insensitive(client: TestClient, clean_users: str) -> None:
    assert client.post("/signup", json=VALID).status_code == 201
    again = client.post("/signup", json={**VALID, "email": "  GRACE@example.COM"})
    assert (again.status_code, again.json()) == (409, {"error": "email already exists"})
    assert len(rows(clean_users)) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "invalid request body"),
        (b"[1, 2]", 400, "invalid request body"),
        (b'{"email": 5, "first_name": "a", "last_name": "b"}', 400, "invalid request body"),
        (
            b'{"email": "a\xff@b.co", "first_name": "a", "last_name": "b"}',
            400,
            "invalid request body",
        ),
        (
            b'{"email": "x@y.co", "first_name": "a\\u0000", "last_name": "b"}',
            400,
            "first name contains invalid characters",
        ),
        (b'{"email": "", "first_name": "a", "last_name": "b"}', 400, "email is required"),
        (b'{"email": "x@y.co", "first_name": "a", "last_name": ""}', 400, "last name is required"),
    ],
)
def test_bad_input_is_a_json_400_and_stores_nothing(
    client: TestClient, clean_users: str, body: bytes, status: int, error: str
) -> None:
    response = client.post("/signup", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert response.headers["content-type"] == "application/json"
    assert rows(clean_users) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_on_signup(client: TestClient, method: str) -> None:
    response = client.request(method, "/signup")
    assert (response.status_code, response.json()) == (405, {"error": "method not allowed"})


def test_body_over_the_limit_is_413(client: TestClient, clean_users: str) -> None:
    big = {**VALID, "last_name": "x" * 2000}
    response = client.post("/signup", json=big)
    assert response.status_code == 413
    assert "error" in response.json()
    assert rows(clean_users) == []


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"error": "not found"})


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_status_of_a_recorded_signup(client: TestClient) -> None:
    client.post("/signup", json=VALID)
    found = client.get("/signup/status", params={"email": "GRACE@example.com"})
    assert found.json() == {"email": "grace@example.com", "status": "recorded"}
    assert client.get("/signup/status", params={"email": "no@one.io"}).status_code == 404


def test_metrics_count_outcomes(client: TestClient) -> None:
    def sample(name: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exported")

    before_201 = sample('signup_requests_total{status_code="201"}')
    before_val = sample('signup_validation_errors_total{field="email"}')
    client.post("/signup", json=VALID)
    client.post("/signup", json={**VALID, "email": "bad"})
    assert sample('signup_requests_total{status_code="201"}') == before_201 + 1
    assert sample('signup_validation_errors_total{field="email"}') == before_val + 1
    assert sample("database_connections_max") == 4


def shed_total() -> float:
    value = REGISTRY.get_sample_value("signup_shed_total", {"reason": "wait_target"})
    return value or 0.0


def test_a_stalled_database_is_a_json_503_with_retry_after_until_it_ends(
    clean_users: str,
) -> None:
    """The app over a database stalled by a held lock: once the queue for its two pooled
    connections has stood, a signup is answered 503 while the lock is still held (so it did
    not wait for it); once it is released, the queued ones get their 201 and so do new ones."""
    settings = Settings(
        database_url=clean_users,
        pool_min=2,
        pool_max=2,
        pool_wait_target_ms=20,
        pool_wait_interval_ms=50,
    )
    app = create_app(settings)
    before = shed_total()

    async def post(client: httpx.AsyncClient, email: str) -> httpx.Response:
        return await client.post("/signup", json={**VALID, "email": email})

    async def run() -> tuple[httpx.Response, list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as client,
        ):
            with psycopg.connect(clean_users) as blocker:
                blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                queued: list[asyncio.Task[httpx.Response]] = []
                for i in range(500):  # a bound: the queue stands after about 70 ms
                    queued.append(asyncio.create_task(post(client, f"q{i}@example.com")))
                    done, _ = await asyncio.wait(queued, timeout=0.01)
                    if done:  # nothing can be served while the lock is held
                        (refused,) = done
                        queued.remove(refused)
                        break
                else:
                    raise AssertionError("no signup was refused while the database stalled")
                blocker.rollback()
            served = list(await asyncio.gather(*queued))
            return refused.result(), served, await post(client, "after@example.com")

    refused, served, after = asyncio.run(run())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {"error": "too many signups right now, retry later"}
    assert shed_total() == before + 1
    assert {r.status_code for r in served} == {201}
    assert after.status_code == 201
    assert len(rows(clean_users)) == len(served) + 1
