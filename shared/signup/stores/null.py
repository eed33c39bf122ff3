"""Persistence switched off: the HTTP ceiling the bench measures every phase against.

Same app, same workers, same validation and metrics; only the write is missing, so the
difference between this and a phase is what persistence costs.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from signup.stores.base import Outcome, Status
from signup.validation import SignupRequest


class NullStore:
    outcome: Outcome = "recorded"
    backend = "database"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(self, signup: SignupRequest) -> dict[str, object]:
        now = datetime.now(UTC)
        return {
            "id": next(self._ids),
            "email": signup.email,
            "first_name": signup.first_name,
            "last_name": signup.last_name,
            "created_at": now,
            "updated_at": now,
        }

    async def check_ready(self) -> None:
        return None

    async def status(self, email: str) -> Status | None:
        return None

    def sample_metrics(self) -> None:
        return None
