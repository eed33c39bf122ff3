"""Phase 3's API side against a real Redis: claim + append in one script, shed, 202/409/503."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import cast

import pytest
import redis
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.testclient import TestClient

from lab._proc import free_port
from signup import _stream
from signup.app import create_app
from signup.config import Settings
from signup.stores import DuplicateEmail, Overloaded, StoreUnavailable
from signup.stores.queue import ACCEPT, QueueStore
from signup.validation import SignupRequest
from tests.conftest import RedisServer

STREAM = "signups"


def claim(client: redis.Redis, email: str) -> bytes | None:
    return cast(bytes | None, client.hget(*_stream.claim_slot(STREAM, email)))


def claims(client: redis.Redis) -> int:
    """How many emails are claimed, over every claim hash."""
    return sum(int(client.hlen(key)) for key in client.scan_iter(f"{STREAM}:claims:*"))


def settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"store": "queue", "redis_url": url, "pool_max": 4}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def signup(email: str) -> SignupRequest:
    return SignupRequest(email=email, first_name="Ada", last_name="Lovelace")


async def create_all(store: QueueStore, requests: list[SignupRequest]) -> list[object]:
    try:
        return await asyncio.gather(*(store.create(r) for r in requests), return_exceptions=True)
    finally:
        await store.close()


@pytest.fixture
def client(clean_redis: str) -> redis.Redis:
    return redis.Redis.from_url(clean_redis)


def test_accept_claims_and_queues_in_one_step(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis))
    [user] = asyncio.run(create_all(store, [signup("ada@example.com")]))
    assert isinstance(user, dict)
    assert set(user) == {"email", "first_name", "last_name", "created_at"}
    assert user["email"] == "ada@example.com"
    [(_entry_id, fields)] = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(STREAM))
    assert fields[b"email"] == b"ada@example.com"
    assert (fields[b"first_name"], fields[b"last_name"]) == (b"Ada", b"Lovelace")
    # The accept time the user is told is the one the writer will store as created_at.
    assert datetime.fromisoformat(fields[b"accepted_at"].decode()) == user["created_at"]
    assert _stream.status_of(claim(client, "ada@example.com")) == "pending"


def test_the_store_parses_replies_with_hiredis(clean_redis: str) -> None:
    store = QueueStore(settings(clean_redis))
    assert isinstance(store._redis, Redis)  # phase 4's ClusterStore has a cluster client
    pool = store._redis.connection_pool
    try:
        assert pool.connection_class(**pool.connection_kwargs)._parser.__class__.__name__ == (
            "_AsyncHiredisParser"
        )
    finally:
        asyncio.run(store.close())


def test_duplicate_is_refused_and_queues_nothing(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis))
    results = asyncio.run(create_all(store, [signup("ada@example.com")] * 2))
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, DuplicateEmail) for r in results) == 1
    assert client.xlen(STREAM) == 1


def test_concurrent_signups_with_one_email_one_wins(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis, pool_max=16))
    results = asyncio.run(create_all(store, [signup("same@example.com")] * 64))
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, DuplicateEmail) for r in results) == 63
    assert client.xlen(STREAM) == 1
    assert claims(client) == 1


def test_sheds_above_the_backlog_without_claiming(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis, max_backlog=3, retry_after_seconds=7))
    requests = [signup(f"u{i}@example.com") for i in range(5)]

    async def sequentially() -> list[object]:
        out: list[object] = []
        try:
            for request in requests:
                try:
                    out.append(await store.create(request))
                except Overloaded as exc:
                    out.append(exc)
        finally:
            await store.close()
        return out

    results = asyncio.run(sequentially())
    assert [isinstance(r, dict) for r in results] == [True, True, True, False, False]
    shed = results[3]
    assert isinstance(shed, Overloaded)
    assert shed.retry_after == 7
    assert client.xlen(STREAM) == 3
    # A shed signup holds no claim, so the same person can retry and succeed later.
    assert claim(client, "u3@example.com") is None
    store.sample_metrics()
    assert REGISTRY.get_sample_value("signup_queue_backlog_seen") == 3


def test_a_retried_script_is_not_a_duplicate(clean_redis: str, client: redis.Redis) -> None:
    """redis-py resends a command after a dropped connection; the token makes that safe."""
    accept = client.register_script(ACCEPT)
    key, field = _stream.claim_slot(STREAM, "ada@example.com")
    fields = ["ada@example.com", "Ada", "Lovelace", "2026-01-01T00:00Z"]
    args: list[bytes | str | int] = [field, *fields, "t1", 100]
    assert accept(keys=[STREAM, key], args=args)[0] == 1
    assert accept(keys=[STREAM, key], args=args)[0] == 1  # the same request again
    assert accept(keys=[STREAM, key], args=[field, *fields, "t2", 100])[0] == 0  # another one
    assert client.xlen(STREAM) == 1


def test_claims_are_spread_over_small_compact_hashes(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis, max_backlog=10_000))
    wanted = [signup(f"spread{i}@example.com") for i in range(2000)]
    results = asyncio.run(create_all(store, wanted))
    assert all(isinstance(r, dict) for r in results)
    keys = list(client.scan_iter(f"{STREAM}:claims:*"))
    # 2,000 emails over 65,536 hashes: nearly all land alone. The fields are 8-byte hashes
    # of the emails, not the emails.
    assert len(keys) > 1900
    assert claims(client) == 2000
    assert {client.object("encoding", k) for k in keys} == {b"listpack"}
    assert {len(f) for k in keys for f in client.hkeys(k)} == {_stream.FIELD_BYTES}


def test_status_follows_the_claim(clean_redis: str, client: redis.Redis) -> None:
    store = QueueStore(settings(clean_redis))

    async def run() -> list[object]:
        try:
            before = await store.status("ada@example.com")
            await store.create(signup("ada@example.com"))
            pending = await store.status("ada@example.com")
            client.hset(*_stream.claim_slot(STREAM, "ada@example.com"), _stream.RECORDED)  # writer
            return [before, pending, await store.status("ada@example.com")]
        finally:
            await store.close()

    assert asyncio.run(run()) == [None, "pending", "recorded"]


def test_redis_killed_and_restarted_keeps_what_was_accepted(
    redis_server: RedisServer, clean_redis: str, client: redis.Redis
) -> None:
    store = QueueStore(settings(clean_redis))
    first = [signup(f"before{i}@example.com") for i in range(50)]
    after = signup("after@example.com")

    async def run() -> object:
        try:
            assert all(isinstance(r, dict) for r in await asyncio.gather(*map(store.create, first)))
            pid = redis_server.process.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            redis_server.process.stop(expected_returncode=-signal.SIGKILL)  # reap it
            redis_server.process.start()
            # The pooled connections died with Redis; the next call reconnects by itself.
            return await store.create(after)
        finally:
            await store.close()

    assert isinstance(asyncio.run(run()), dict)
    assert client.xlen(STREAM) == 51
    assert claims(client) == 51


def test_redis_down_is_store_unavailable_not_a_hang() -> None:
    store = QueueStore(settings(f"redis://127.0.0.1:{free_port()}/0"))

    async def run() -> tuple[object, ...]:
        try:
            return await asyncio.wait_for(
                asyncio.gather(
                    store.create(signup("ada@example.com")),
                    store.check_ready(),
                    store.status("ada@example.com"),
                    return_exceptions=True,
                ),
                timeout=30,
            )
        finally:
            await store.close()

    assert all(isinstance(r, StoreUnavailable) for r in asyncio.run(run()))


def test_a_redis_that_never_answers_times_out() -> None:
    # A socket that accepts connections (the kernel does, from the backlog) and never replies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        store = QueueStore(settings(f"redis://127.0.0.1:{port}/0"))

        async def run() -> BaseException | object:
            try:
                return (
                    await asyncio.wait_for(
                        asyncio.gather(store.create(signup("a@b.co")), return_exceptions=True),
                        timeout=30,
                    )
                )[0]
            finally:
                await store.close()

        assert isinstance(asyncio.run(run()), StoreUnavailable)


@pytest.fixture
def app(clean_redis: str) -> Iterator[TestClient]:
    app_settings = settings(clean_redis, max_backlog=2)
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_http_contract_of_the_queue(app: TestClient) -> None:
    body = {"email": "Ada@Example.com", "first_name": " Ada ", "last_name": "Lovelace"}
    accepted = app.post("/signup", json=body)
    assert accepted.status_code == 202
    assert accepted.json()["message"] == "signup accepted"
    user = accepted.json()["user"]
    assert (user["email"], user["first_name"]) == ("ada@example.com", "Ada")
    assert "created_at" in user
    duplicate = app.post("/signup", json={**body, "email": "ADA@example.com"})
    assert (duplicate.status_code, duplicate.json()) == (409, {"error": "email already exists"})
    status = app.get("/signup/status", params={"email": "ada@example.com"})
    assert status.json() == {"email": "ada@example.com", "status": "pending"}
    assert app.post("/signup", json={**body, "email": "b@example.com"}).status_code == 202
    shed = app.post("/signup", json={**body, "email": "c@example.com"})
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert "error" in shed.json()
    assert app.get("/readyz").status_code == 200


def test_http_500_and_not_ready_when_redis_is_down() -> None:
    down = settings(f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down), raise_server_exceptions=False) as test_client:
        body = {"email": "a@example.com", "first_name": "A", "last_name": "B"}
        response = test_client.post("/signup", json=body)
        assert (response.status_code, response.json()) == (500, {"error": "failed to create user"})
        assert test_client.get("/readyz").status_code == 503
