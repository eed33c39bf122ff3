"""What every way of persisting a signup promises the handler.

The handler, validation and metrics are written once; a phase differs only in the Store it
builds from settings (see `signup.stores.build`).
"""

from __future__ import annotations

from typing import Literal, Protocol

from signup.validation import SignupRequest

Status = Literal["pending", "recorded"]
Outcome = Literal["recorded", "queued"]


class DuplicateEmail(Exception):
    """The email already signed up (compared case-insensitively)."""


class StoreUnavailable(Exception):
    """The database or queue failed; the cause is chained and logged once by the handler."""


class Overloaded(Exception):
    """Shedding load on purpose: answer 503 with Retry-After instead of queueing forever."""

    #: the `error_type` it is counted under, and what the client is told.
    error_type = "overloaded"
    message = "too many signups right now, retry later"

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class StoreFull(Overloaded):
    """The store is up but refuses writes (Redis at `maxmemory`, or unable to persist). Nothing
    was accepted, so the client may retry, and the store accepts again by itself once it has
    room: a 503 with Retry-After like shedding, counted apart because an operator must act."""

    error_type = "queue_full"
    message = "signups are paused, retry later"


class Store(Protocol):
    #: What a successful `create` has done: the row exists (recorded), or the signup is
    #: durably queued and its row will follow (queued). The handler picks the HTTP answer.
    outcome: Outcome
    #: What the store talks to ("database", "queue"): the `error_type` a StoreUnavailable
    #: is counted under.
    backend: str

    async def open(self) -> None:
        """Start connecting; must not fail when the backend is down (readiness says so)."""

    async def close(self) -> None: ...

    async def create(self, signup: SignupRequest) -> dict[str, object]:
        """Persist (or durably accept) one signup and return the user fields known now.

        Raises DuplicateEmail, StoreUnavailable or Overloaded (StoreFull included).
        """

    async def check_ready(self) -> None:
        """Raise StoreUnavailable unless the backend answers a real query."""

    async def status(self, email: str) -> Status | None:
        """Where a signup is: pending (accepted, not yet a row), recorded, or unknown."""

    def sample_metrics(self) -> None:
        """Copy pool or queue statistics into gauges; called about once a second."""
