"""`python -m signup._claims_memory` against a real Redis: it measures what it says, and it
never empties a Redis that holds data."""

from __future__ import annotations

import re

import pytest
import redis

from signup._claims_memory import main


def test_measures_both_layouts_and_leaves_redis_as_it_found_it(
    clean_redis: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(clean_redis)
    maxmemory = client.config_get("maxmemory")["maxmemory"]
    # Enough claims that most of the 65,536 hashes exist before the second half is added.
    args = ["--claims", "300000", "--one-hash-claims", "5000", "--backlog", "2000"]
    args += ["--lived-claims", "60000"]
    assert main(["--redis-url", clean_redis, *args]) == 0
    out = capsys.readouterr().out
    old = float(re.findall(r"one hash of emails: +([\d.]+) bytes per claim", out)[0])
    marginal = float(re.findall(r"the next ones ([\d.]+) each", out)[0])
    # Emails of 57 characters cannot cost less than 57 bytes where the email is stored.
    assert old > 57 > marginal > 0
    assert "0 of " in out  # no hash grew past the listpack limit
    # Claims lived through the API's and the writer's steps still cost memory once recorded.
    # (RSS is printed too, but whether the allocator had given pages back first is its call.)
    _, lived_used = map(float, re.findall(r"([\d.]+) bytes of RSS per claim \(([\d.]+)", out)[0])
    assert lived_used > 0
    assert client.dbsize() == 0
    assert client.config_get("maxmemory")["maxmemory"] == maxmemory


def test_refuses_a_redis_that_holds_data(
    clean_redis: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(clean_redis)
    client.set("precious", "1")
    with pytest.raises(SystemExit) as stopped:
        main(["--redis-url", clean_redis, "--claims", "10"])
    assert stopped.value.code == 2
    assert "scratch Redis" in capsys.readouterr().err
    assert client.get("precious") == b"1"
