"""Phase 3: claim the email and queue the signup in Redis in one step; a writer inserts later.

The API's work per signup is one Lua script: refuse a duplicate, refuse when the stream
already holds `max_backlog` signups (shed load with a 503 instead of queueing forever), else
claim the email and append the signup to the stream. A script runs atomically, so a claimed
email always has its queued signup and two requests for one email cannot both pass.

When Redis refuses writes (full at `maxmemory` with `noeviction`, an append-only file it
cannot write, a replica, loading its data after a restart) the script has written nothing:
the answer is a 503 with Retry-After, and the same request succeeds once Redis has room. The
script declares no flags, so Redis lets it run while full and refuses only its first write:
a duplicate is still answered 409 and `GET /signup/status` still answers.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

from signup import _stream, metrics
from signup.config import Settings
from signup.stores.base import (
    DuplicateEmail,
    Outcome,
    Overloaded,
    Status,
    StoreFull,
    StoreUnavailable,
)
from signup.validation import SignupRequest

# KEYS: stream, the email's claim hash. ARGV: claim field, the entry's values in the order of
# _stream.FIELDS, token, max_backlog. Returns {outcome, backlog}: 1 accepted, 0 duplicate,
# -1 shed.
_ACCEPT_TEMPLATE = """
local claim = redis.call('HGET', KEYS[2], ARGV[1])
if claim then
  if claim == '@PENDING@' .. ARGV[@TOKEN@] then
    return {1, redis.call('XLEN', KEYS[1])}
  end
  return {0, -1}
end
local backlog = redis.call('XLEN', KEYS[1])
if backlog >= tonumber(ARGV[@MAX@]) then
  return {-1, backlog}
end
redis.call('HSET', KEYS[2], ARGV[1], '@PENDING@' .. ARGV[@TOKEN@])
local added = redis.pcall('XADD', KEYS[1], '*', @FIELDS@)
if type(added) == 'table' and added.err then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return redis.error_reply(added.err)
end
return {1, backlog + 1}
"""
# The claim's prefix and the entry's field names are the ones the writer reads (_stream): the
# script is written with placeholders for them, filled in once here.
_TOKEN = 2 + len(_stream.FIELDS)  # ARGV index of the token; max_backlog follows it
ACCEPT = (
    _ACCEPT_TEMPLATE.replace("@PENDING@", _stream.PENDING)
    .replace("@FIELDS@", ", ".join(f"'{f}', ARGV[{i}]" for i, f in enumerate(_stream.FIELDS, 2)))
    .replace("@TOKEN@", str(_TOKEN))
    .replace("@MAX@", str(_TOKEN + 1))
)
ACCEPTED, DUPLICATE, SHED = 1, 0, -1
# The order create() passes the entry's values in. Checked here, once, rather than mapped by
# name on every request: a change to _stream.FIELDS must come to create() too.
_ENTRY_ORDER = ("email", "first_name", "last_name", "accepted_at")
if _stream.FIELDS != _ENTRY_ORDER:
    raise ImportError(f"QueueStore.create passes {_ENTRY_ORDER}, _stream.FIELDS says otherwise")


class QueueStore:
    outcome: Outcome = "queued"
    backend = "queue"

    _redis: Redis | RedisCluster

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._redis = redis = _stream.connect(
            settings.redis_url,
            max_connections=settings.pool_max,
            pool_timeout=settings.pool_timeout,
        )
        self._accept = redis.register_script(ACCEPT)
        self._max_backlog = settings.max_backlog
        self._backlog = 0

    def _stream_of(self, email: str) -> str:
        """The stream that queues `email`'s signup (phase 4 has one per shard)."""
        return self._settings.stream

    async def _run_accept(
        self, keys: tuple[str, str], args: tuple[str | bytes | int, ...]
    ) -> tuple[int, int]:
        outcome, backlog = await self._accept(keys=keys, args=args)
        return int(outcome), int(backlog)

    async def open(self) -> None:
        # Connections are made on first use, so the app starts while Redis is down.
        return None

    async def close(self) -> None:
        await self._redis.aclose()

    async def create(self, signup: SignupRequest) -> dict[str, object]:
        accepted_at = datetime.now(UTC)
        token = secrets.token_hex(8)
        stream = self._stream_of(signup.email)
        claims, field = _stream.claim_slot(stream, signup.email)
        args = (
            field,
            # In _ENTRY_ORDER, which is _stream.FIELDS (checked once, at import).
            signup.email,
            signup.first_name,
            signup.last_name,
            accepted_at.isoformat(),
            token,
            self._max_backlog,
        )
        try:
            outcome, backlog = await self._run_accept((stream, claims), args)
        except RedisError as exc:
            raise self._failure(exc) from exc
        if outcome == DUPLICATE:
            raise DuplicateEmail
        self._backlog = backlog
        if outcome == SHED:
            raise Overloaded(
                self._settings.retry_after_seconds,
                f"stream backlog {backlog} reached its share of SIGNUP_MAX_BACKLOG",
            )
        return {
            "email": signup.email,
            "first_name": signup.first_name,
            "last_name": signup.last_name,
            "created_at": accepted_at,
        }

    async def check_ready(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def status(self, email: str) -> Status | None:
        try:
            claim = await self._redis.hget(*_stream.claim_slot(self._stream_of(email), email))
        except RedisError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return _stream.status_of(claim)

    def _failure(self, exc: RedisError) -> StoreUnavailable | Overloaded:
        refusing = isinstance(exc, OutOfMemoryError | ReadOnlyError | BusyLoadingError) or (
            isinstance(exc, ResponseError) and str(exc).startswith("MISCONF")
        )
        if refusing:
            return StoreFull(self._settings.retry_after_seconds, f"redis refuses writes: {exc}")
        return StoreUnavailable(f"redis: {exc}")

    def sample_metrics(self) -> None:
        metrics.QUEUE_BACKLOG_SEEN.set(self._backlog)
