"""Phase 4's shards: an email's keys share one slot, and the shards spread over the slots."""

from __future__ import annotations

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from signup import _shards, _stream


@pytest.mark.parametrize("shards", [1, 3, 12, 16, 64])
def test_each_shard_sits_in_its_own_equal_part_of_the_slots(shards: int) -> None:
    streams = _shards.streams("signups", shards)
    assert len(set(streams)) == shards
    for index, stream in enumerate(streams):
        part = REDIS_CLUSTER_HASH_SLOTS / shards
        assert index * part <= _shards.slot(stream) < (index + 1) * part


def test_three_primaries_hold_four_of_twelve_shards_each() -> None:
    # redis-cli --cluster create gives primary i the slots [i * 16384 / 3, (i + 1) * 16384 / 3).
    owners = [_shards.slot(s) * 3 // REDIS_CLUSTER_HASH_SLOTS for s in _shards.streams("s", 12)]
    assert sorted(owners) == [0] * 4 + [1] * 4 + [2] * 4


def test_an_emails_claim_and_stream_share_one_slot() -> None:
    for number in range(200):
        email = f"user{number}@example.com"
        stream = _shards.stream_of("signups", 12, email)
        claims, _field = _stream.claim_slot(stream, email)
        assert _shards.slot(claims) == _shards.slot(stream) == _shards.slot(f"{stream}:dead")


def test_the_shards_are_used_about_evenly() -> None:
    counts = [0] * 12
    for number in range(12_000):
        counts[_shards.shard_of(f"user{number}@example.com", 12)] += 1
    assert min(counts) > 800, counts
    assert max(counts) < 1200, counts
