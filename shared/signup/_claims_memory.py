"""How many bytes of Redis one email claim costs, in the old layout and the one in use.

`python -m signup._claims_memory --redis-url URL` fills an empty scratch Redis with claims of
emails shaped like the load tests' (`u-<run id>-<vu>-<iteration>@signup-lab.test`, 57
characters), reads `used_memory` before and after each layout, and prints bytes per claim, what
a full stream backlog costs, and how many claims fit beside it in `maxmemory`. It empties that
Redis when it is done, and refuses to start on one that holds any key.

It also lives claims through what the API and the writer do to them (a pending token and a stream
entry, then `recorded` and the entry deleted) and reads `used_memory_rss`: what the kernel gives
Redis per claim, which the soak (`lab.loadtest.soak.CLAIM_BYTES`) allows Redis to grow by.
`used_memory` is what `maxmemory` limits; RSS adds the allocator's fragmentation from rewriting
every claim in place.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import redis

from signup import _stream

STREAM = "signups"
RUN_ID = "20261123t134513z-target-phase3-ab12"  # the shape `lab.loadtest` gives run ids
CHUNK = 10_000
BATCH = 1_600  # a second of the soak's load: accepted, then written as one batch
Fill = Callable[[redis.client.Pipeline, str], None]


def emails(count: int, start: int = 0) -> Iterator[str]:
    for i in range(start, start + count):
        yield f"u-{RUN_ID}-{i % 3000 + 1}-{i // 3000}@signup-lab.test"


def used_memory(client: redis.Redis) -> int:
    client.memory_purge()  # return the allocator's free pages first
    return int(client.info("memory")["used_memory"])


def add(client: redis.Redis, fill: Fill, count: int, start: int = 0) -> int:
    """Fill `count` items; return `used_memory` after."""
    pipe = client.pipeline(transaction=False)
    for n, email in enumerate(emails(count, start), 1):
        fill(pipe, email)
        if n % CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return used_memory(client)


def measure(client: redis.Redis, count: int, fill: Fill) -> float:
    """Bytes per item that `fill` adds, from an empty database."""
    client.flushall()
    before = used_memory(client)
    return (add(client, fill, count) - before) / count


def one_hash(pipe: redis.client.Pipeline, email: str) -> None:
    pipe.hset(f"{STREAM}:claims", email, "recorded")


def compact(pipe: redis.client.Pipeline, email: str) -> None:
    pipe.hset(*_stream.claim_slot(STREAM, email), _stream.RECORDED)


def queued(pipe: redis.client.Pipeline, email: str) -> None:
    """What one signup waiting in the stream costs: its entry and its pending claim."""
    pipe.hset(*_stream.claim_slot(STREAM, email), f"{_stream.PENDING}{'0' * 16}")
    accepted_at = datetime.now(UTC).isoformat()
    pipe.xadd(
        STREAM,
        {"email": email, "first_name": "Grace", "last_name": "Hopper", "accepted_at": accepted_at},
    )


def lived(client: redis.Redis, count: int) -> tuple[float, float]:
    """(used_memory, RSS) bytes per claim from a sixth of `count` claims to `count`, each one
    accepted (a pending token and a stream entry) and then recorded (the entry deleted) a batch
    at a time, as the API and the writer do. RSS is read without a purge, as a live Redis is."""

    def memory() -> tuple[int, int]:
        info = client.info("memory")
        return int(info["used_memory"]), int(info["used_memory_rss"])

    client.flushall()
    used_memory(client)
    warm_claims, warm = count // 6, (0, 0)
    for start in range(0, count, BATCH):
        batch = list(emails(min(BATCH, count - start), start))
        pipe = client.pipeline(transaction=False)
        for email in batch:
            queued(pipe, email)
        ids = pipe.execute()[1::2]
        for email in batch:
            pipe.hset(*_stream.claim_slot(STREAM, email), _stream.RECORDED)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        if start < warm_claims <= start + len(batch):
            warm_claims, warm = start + len(batch), memory()
    used, rss = memory()
    added = count - warm_claims
    return (used - warm[0]) / added, (rss - warm[1]) / added


def converted_hashes(client: redis.Redis) -> tuple[int, int]:
    """(claim hashes, how many of them are no longer listpacks)."""
    keys = list(client.scan_iter(f"{STREAM}:claims:*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.object("encoding", key)
    return len(keys), sum(encoding != b"listpack" for encoding in pipe.execute())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True, help="an empty scratch Redis")
    parser.add_argument("--claims", type=int, default=10_000_000, help="claims, layout in use")
    parser.add_argument(
        "--one-hash-claims", type=int, default=1_000_000, help="claims, old layout (linear)"
    )
    parser.add_argument("--backlog", type=int, default=200_000, help="SIGNUP_MAX_BACKLOG")
    parser.add_argument(
        "--lived-claims",
        type=int,
        default=2_880_000,
        help="claims accepted and then recorded, as in a 30-minute soak at 1,600/s",
    )
    args = parser.parse_args(argv)
    if min(args.claims, args.one_hash_claims, args.backlog) < 1:
        parser.error("counts must be at least 1")
    if args.lived_claims < 6 * BATCH:
        parser.error(f"--lived-claims must be at least {6 * BATCH:,}: a sixth of them, a batch")
    client = redis.Redis.from_url(args.redis_url)
    if client.dbsize():
        parser.error(f"{args.redis_url} holds keys: this tool empties it, so use a scratch Redis")
    maxmemory = int(str(client.config_get("maxmemory")["maxmemory"])) or 400 * 2**20
    client.config_set("maxmemory", "0")  # measuring must not be refused
    started = time.monotonic()
    try:
        old = measure(client, args.one_hash_claims, one_hash)
        per_queued = measure(client, args.backlog, queued)
        client.flushall()
        empty = used_memory(client)
        # The 65,536 keys cost the same however many claims they hold, so a claim costs less
        # the more there are: what decides the capacity is the cost of the next one.
        half = add(client, compact, args.claims // 2)
        full = add(client, compact, args.claims - args.claims // 2, start=args.claims // 2)
        hashes, converted = converted_hashes(client)
        lived_used, lived_rss = lived(client, args.lived_claims)
    finally:
        client.flushall()
        client.config_set("maxmemory", str(maxmemory))
    new = (full - empty) / args.claims
    marginal = (full - half) / (args.claims - args.claims // 2)
    backlog_bytes = per_queued * args.backlog
    fits = args.claims + int((maxmemory - backlog_bytes - full) / marginal)
    fits_one_hash = int((maxmemory - backlog_bytes - empty) / old)
    version = client.info("server")["redis_version"]
    print(f"Redis {version}, emails of {len(next(emails(1)))} characters")
    print(f"one hash of emails:  {old:6.1f} bytes per claim ({args.one_hash_claims:,} claims)")
    print(
        f"65,536 small hashes: {new:6.1f} bytes per claim ({args.claims:,} claims; the next "
        f"ones {marginal:.1f} each; {converted} of {hashes:,} hashes past the listpack limit)"
    )
    queued_mib = backlog_bytes / 2**20
    print(f"a full backlog:      {queued_mib:6.1f} MiB ({args.backlog:,} signups queued)")
    print(
        f"maxmemory {maxmemory / 2**20:.0f} MiB holds about {fits:,} claims beside a full "
        f"backlog (one hash: {fits_one_hash:,})"
    )
    print(
        f"a claim's life:      {lived_rss:6.1f} bytes of RSS per claim ({lived_used:.1f} in "
        f"used_memory; from {args.lived_claims // 6:,} to {args.lived_claims:,} claims, each "
        "accepted, then recorded)"
    )
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
