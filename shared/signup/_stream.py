"""What the API (QueueStore) and the writer agree on: Redis keys, entry fields, claim values,
and how both connect to Redis.

One claim per email lives in a single hash beside the stream: `pending:<token>` from the 202
until the writer committed the row, then `recorded`. The token makes the accept script
idempotent, so a command redis-py retries after a dropped connection cannot turn an accepted
signup into a 409.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from signup.stores.base import Status

GROUP = "signup-writers"
FIELDS = ("email", "first_name", "last_name", "accepted_at")
PENDING = "pending:"
RECORDED = "recorded"

# A refused or unreachable Redis must turn into a fast 500, never a hung request: connecting
# gets one second, any reply two. Redis answers in microseconds when it is alive.
CONNECT_TIMEOUT = 1.0
REPLY_TIMEOUT = 2.0


def claims_key(stream: str) -> str:
    return f"{stream}:claims"


def status_of(claim: bytes | str | None) -> Status | None:
    if claim is None:
        return None
    text = claim.decode() if isinstance(claim, bytes) else claim
    return "recorded" if text == RECORDED else "pending"


def connect(
    url: str,
    *,
    max_connections: int,
    pool_timeout: float,
    reply_timeout: float = REPLY_TIMEOUT,
    retries: int = 1,
) -> Redis:
    """A client over a bounded pool: at most `max_connections` sockets per process, and a
    caller waits at most `pool_timeout` for one."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=reply_timeout,
        # The API's one immediate retry replaces a pooled connection that died with a
        # restarted Redis; more would only delay the 500 while Redis is really down.
        retry=Retry(NoBackoff(), retries),
        health_check_interval=0,
    )
    # from_pool: closing the client also closes the pool it owns.
    return Redis.from_pool(pool)
