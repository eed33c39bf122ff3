"""Switching phases keeps the contract: an email signed up in any phase answers 409 in every
phase after it, whatever ran before.

Natively the run folder keeps PostgreSQL's rows (and Redis's claims) across `make down`, so
phase 3 starts on a table an earlier phase filled. Its claims are backfilled from that table
before any app answers (the `claims` one-shot), or the API would answer 202 for a known email.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests._make import lab_environment, make
from tests._probe import wait_until
from tests.conftest import server_folder

pytestmark = pytest.mark.e2e
CREATED = {"phase1": 201, "phase3": 202, "phase4": 202}


@pytest.fixture
def lab_env() -> Iterator[dict[str, str]]:
    with server_folder("phase-switch-") as folder:
        env = lab_environment(folder / "run", REPLICAS="1")
        try:
            yield env
        finally:
            make("down", env)


def up(env: dict[str, str], phase: str) -> tuple[str, str]:
    """`make phaseN`; the entry URL and what `make` said."""
    result = make(phase, env)
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads((Path(env["LAB_RUN_DIR"]) / "state.json").read_text())
    entry = "app" if phase == "phase1" else "nginx"
    url = next(s["url"] for s in state["services"] if s["service"] == entry and s["url"])
    return str(url), result.stdout


def post(url: str, email: str) -> int:
    body = {"email": email, "first_name": "Ada", "last_name": "Lovelace"}
    return httpx.post(f"{url}/signup", json=body, timeout=10).status_code


def recorded(url: str, email: str) -> Callable[[], bool]:
    """True once the queued signup of `email` is a row (phases 3 and 4)."""

    def check() -> bool:
        answer = httpx.get(f"{url}/signup/status", params={"email": email}, timeout=10)
        return bool(answer.json().get("status") == "recorded")

    return check


def down(env: dict[str, str]) -> None:
    result = make("down", env)
    assert result.returncode == 0, result.stderr


def test_a_known_email_answers_409_in_every_phase_after_it(lab_env: dict[str, str]) -> None:
    url, _ = up(lab_env, "phase1")
    assert post(url, "ada@example.com") == 201
    down(lab_env)

    url, said = up(lab_env, "phase3")
    assert "claims: claims rebuilt: 1 emails marked recorded" in said
    assert post(url, "ADA@example.com") == 409, "phase 1's row is claimed before phase 3 answers"
    assert post(url, "grace@example.com") == 202
    wait_until(recorded(url, "grace@example.com"), 30, "phase 3's writer wrote grace's row")
    down(lab_env)

    url, _ = up(lab_env, "phase1")
    assert post(url, "grace@example.com") == 409
    assert post(url, "hopper@example.com") == 201, "a row Redis has never seen"
    down(lab_env)

    url, said = up(lab_env, "phase3")
    assert "claims rebuilt: 3 emails marked recorded" in said
    assert post(url, "Hopper@Example.com") == 409
    assert post(url, "ada@example.com") == 409
    down(lab_env)

    # Phase 4's cluster starts empty: its claims come from the table too, on their shards.
    url, said = up(lab_env, "phase4")
    assert "claims rebuilt: 3 emails marked recorded" in said
    assert post(url, "GRACE@example.com") == 409
    assert post(url, "turing@example.com") == 202
    wait_until(recorded(url, "turing@example.com"), 30, "phase 4's writer wrote turing's row")
    down(lab_env)

    url, _ = up(lab_env, "phase1")
    assert post(url, "turing@example.com") == 409
