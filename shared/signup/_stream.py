"""What the API (QueueStore) and the writer agree on: Redis keys, entry fields, claim values,
and how both connect to Redis.

One claim per email: `pending:<token>` from the 202 until the writer committed the row, then
`recorded` (stored as "1"). The token makes the accept script idempotent, so a command redis-py
retries after a dropped connection cannot turn an accepted signup into a 409.

Claims are kept for good (they are the duplicate check), so their size decides how many
signups one Redis holds. One big hash of emails costs 134 bytes per claim (emails of the load
tests' shape, 57 characters). Here each email is hashed (BLAKE2b, 80 bits): 16 bits pick one
of 65,536 small hashes, the other 64 bits are the field. A hash of a few hundred short fields
stays in Redis's compact listpack encoding (`hash-max-listpack-entries` in redis.conf): 13.6
bytes per claim at ten million claims (`python -m signup._claims_memory` measures both). The
trade: Redis no longer holds the emails (PostgreSQL does), and two emails sharing all 80 bits
would make the second a false 409, about once in 10^17 signups at ten million claims.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from signup.stores.base import Status

GROUP = "signup-writers"
FIELDS = ("email", "first_name", "last_name", "accepted_at")
PENDING = "pending:"
# A listpack stores a small integer in one byte, the word "recorded" in ten.
RECORDED = "1"
BUCKET_BYTES = 2  # 65,536 hashes: ~153 claims each at ten million
FIELD_BYTES = 8

# A refused or unreachable Redis must turn into a fast 500, never a hung request: connecting
# gets one second, any reply two. Redis answers in microseconds when it is alive.
CONNECT_TIMEOUT = 1.0
REPLY_TIMEOUT = 2.0


def _digest(email: str) -> bytes:
    return hashlib.blake2b(email.encode(), digest_size=BUCKET_BYTES + FIELD_BYTES).digest()


def claim_slot(stream: str, email: str) -> tuple[str, bytes]:
    """The hash and the field that hold `email`'s claim."""
    digest = _digest(email)
    return f"{stream}:claims:{digest[:BUCKET_BYTES].hex()}", digest[BUCKET_BYTES:]


def bucket(email: str) -> int:
    """The number of `email`'s claim hash (0 to 65,535): phase 4 derives its shard from it."""
    return int.from_bytes(_digest(email)[:BUCKET_BYTES], "big")


def legacy_claims_key(stream: str) -> str:
    """The single hash of emails that earlier versions kept; `--rebuild-claims` removes it."""
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
