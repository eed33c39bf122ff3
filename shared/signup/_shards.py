"""Phase 4's keys: the claims and the stream split into shards of a Redis Cluster.

A signup's Lua script must touch keys of one hash slot to run atomically on a cluster node, so
every key of a shard carries the shard's hash tag (`signups:{t}`, `signups:{t}:claims:…`), and
an email's shard comes from the same digest that picks its claim hash (signup._stream): the
same email, in any case (the API lower-cases it), always lands on the same shard.

The tags are chosen, not numbered: tag `t` of shard s is the first string whose slot falls in
the s-th of `shards` equal parts of the 16,384 slots. `redis-cli --cluster create` gives each
of P primaries one contiguous part, so with S a multiple of P each primary holds S / P shards,
and a primary added later and rebalanced takes its share of them. Plain `{0}`, `{1}`, … land on
slots at random: 12 of them put 6 shards on one of three primaries.
"""

from __future__ import annotations

import functools

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from signup import _stream


@functools.cache
def tags(shards: int) -> tuple[str, ...]:
    """The hash tag of each shard, spread evenly over the slots."""
    found = []
    for shard in range(shards):
        low = shard * REDIS_CLUSTER_HASH_SLOTS // shards
        high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
        candidate = 0
        while not low <= key_slot(f"{shard}.{candidate}".encode()) < high:
            candidate += 1
        found.append(f"{shard}.{candidate}")
    return tuple(found)


def streams(stream: str, shards: int) -> tuple[str, ...]:
    """The stream key of every shard: the writers read them all."""
    return tuple(f"{stream}:{{{tag}}}" for tag in tags(shards))


def shard_of(email: str, shards: int) -> int:
    return _stream.bucket(email) % shards


def stream_of(stream: str, shards: int, email: str) -> str:
    """The stream that queues `email`'s signup; its claim is `_stream.claim_slot` of it."""
    return streams(stream, shards)[shard_of(email, shards)]


def slot(key: str) -> int:
    return key_slot(key.encode())
