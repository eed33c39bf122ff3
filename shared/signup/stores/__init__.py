"""Pick the persistence of a phase from settings."""

from __future__ import annotations

from signup.config import Settings
from signup.stores.base import (
    DuplicateEmail,
    Outcome,
    Overloaded,
    Status,
    Store,
    StoreFull,
    StoreUnavailable,
)

__all__ = [
    "DuplicateEmail",
    "Outcome",
    "Overloaded",
    "Status",
    "Store",
    "StoreFull",
    "StoreUnavailable",
    "build",
]


def build(settings: Settings) -> Store:
    if settings.store == "postgres":
        from signup.stores.postgres import PostgresStore

        return PostgresStore(settings)
    if settings.store == "queue":
        from signup.stores.queue import QueueStore

        return QueueStore(settings)
    if settings.store == "cluster":
        from signup.stores.cluster import ClusterStore

        return ClusterStore(settings)
    from signup.stores.null import NullStore

    return NullStore()
