"""Turning stream entries into rows, and the writer's own metrics registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, ProcessCollector

from signup import metrics
from signup._insert import Row

log = logging.getLogger("signup.writer")
Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class Batch:
    """One batch read from the stream: the rows to insert and every entry id to acknowledge
    (duplicates within the batch and malformed entries are acknowledged too)."""

    ids: list[bytes] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    # Entries that can never become a row; kept in a dead-letter stream for a person to see.
    malformed: list[Entry] = field(default_factory=list)
    in_batch_duplicates: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def parse(entries: list[Entry]) -> Batch:
    batch = Batch()
    seen: set[str] = set()
    for entry_id, fields in entries:
        batch.ids.append(entry_id)
        if not fields:  # pending, but its data was deleted already: only the XACK is left
            continue
        try:
            email = fields[b"email"].decode()
            row = (
                email,
                fields[b"first_name"].decode(),
                fields[b"last_name"].decode(),
                datetime.fromisoformat(fields[b"accepted_at"].decode()),
            )
        except (KeyError, UnicodeDecodeError, ValueError):
            log.error("malformed stream entry %s moved to the dead-letter stream", entry_id)
            batch.malformed.append((entry_id, fields))
            continue
        if email in seen:
            # Only possible when Redis lost its claims; the first accepted signup wins, as the
            # unique index would decide anyway.
            batch.in_batch_duplicates += 1
            continue
        seen.add(email)
        batch.emails.append(email)
        batch.rows.append(row)
    return batch


def registry() -> CollectorRegistry:
    """Only the writer's series, plus the process's own CPU and memory."""
    reg = metrics.writer().registry
    ProcessCollector(registry=reg)
    return reg
