"""Turning stream entries into rows, and a written batch into its acknowledgement."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from signup import _stream
from signup._insert import Row

log = logging.getLogger("signup.writer")
Entry = tuple[bytes, dict[bytes, bytes]]
# The entry fields the API's accept script writes, by name from _stream.FIELDS (a KeyError at
# import if one is gone), as the bytes Redis returns.
_KEYS = {name: name.encode() for name in _stream.FIELDS}
_EMAIL, _FIRST_NAME, _LAST_NAME, _ACCEPTED_AT = (
    _KEYS[name] for name in ("email", "first_name", "last_name", "accepted_at")
)

# Marks the claims recorded, sets malformed entries aside, then XACKs and XDELs the batch: one
# atomic step, as a MULTI would be. allow-oom: when Redis is full it refuses writes, yet this
# step must run, because deleting written entries is what frees the memory again.
# KEYS: stream, dead-letter stream, the claim hash of each written email.
# ARGV: group, recorded value, n, n entry ids, one claim field per claim hash, then each
# malformed entry as its length k and k values (id and its field/value pairs).
ACKNOWLEDGE = """#!lua flags=allow-oom
local n = tonumber(ARGV[3])
local claims = #KEYS - 2
for i = 1, claims do
  redis.call('HSET', KEYS[2 + i], ARGV[3 + n + i], ARGV[2])
end
local at = 4 + n + claims
while at <= #ARGV do
  local k = tonumber(ARGV[at])
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, at + 1, at + k))
  at = at + k + 1
end
-- unpack() is limited to a few thousand values; a batch may hold 50,000 ids.
for first = 4, 3 + n, 1000 do
  local last = math.min(first + 999, 3 + n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, first, last))
  redis.call('XDEL', KEYS[1], unpack(ARGV, first, last))
end
return n
"""


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
            email = fields[_EMAIL].decode()
            row = (
                email,
                fields[_FIRST_NAME].decode(),
                fields[_LAST_NAME].decode(),
                datetime.fromisoformat(fields[_ACCEPTED_AT].decode()),
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


def acknowledgement(stream: str, batch: Batch) -> tuple[list[str], list[bytes | str | int]]:
    """KEYS and ARGV of ACKNOWLEDGE for a batch whose rows are committed."""
    slots = [_stream.claim_slot(stream, email) for email in batch.emails]
    keys = [stream, f"{stream}:dead", *(key for key, _ in slots)]
    args: list[bytes | str | int] = [_stream.GROUP, _stream.RECORDED, len(batch.ids)]
    args += batch.ids
    args += [field for _, field in slots]
    for entry_id, fields in batch.malformed:
        values = [b"id", entry_id, *(part for pair in fields.items() for part in pair)]
        args += [len(values), *values]
    return keys, args
