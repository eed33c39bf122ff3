"""Group commit: the signups bound for one node share one round trip to it.

Sent one by one, every signup costs its node a read, a write and, with WAIT, a trip to the
replica and back: work per request, not per signup, and on a Redis held to a small CPU quota
it is most of the work (docs/04-cluster.md measures it). Here each node has at most one group
in flight; the signups that arrive meanwhile wait and leave together as the next group, so a
group is as large as the load makes it: one signup when the node is idle, dozens when it is
the wall. A WAIT at the end of a group confirms every write of the group, as PostgreSQL's
group commit makes one fsync cover many transactions.

A signup that cannot leave within `wait_turn` seconds (its node hangs, or the load is more than
the node answers) is refused with `TurnTimeout` and never sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")
Result = TypeVar("Result")


class TurnTimeout(Exception):
    """The signup waited `wait_turn` seconds and its group never left."""


@dataclass(eq=False)
class _Waiting(Generic[Item, Result]):
    item: Item
    sent: asyncio.Future[None] = field(default_factory=asyncio.Future)
    answer: asyncio.Future[Result] = field(default_factory=asyncio.Future)


class Groups(Generic[Key, Item, Result]):
    """`send(key, items)` answers a group with one result per item, in order, where a result
    may be an exception (that item's, or the whole group's when it raises)."""

    def __init__(
        self,
        send: Callable[[Key, list[Item]], Awaitable[list[Result | BaseException]]],
        *,
        wait_turn: float,
        most: int,
    ) -> None:
        self._send = send
        self._wait_turn = wait_turn
        self._most = most
        self._waiting: dict[Key, list[_Waiting[Item, Result]]] = {}
        # A reference to every sender: the event loop keeps only weak ones to tasks.
        self._senders: dict[Key, asyncio.Task[None]] = {}

    async def submit(self, key: Key, item: Item) -> Result:
        waiting: _Waiting[Item, Result] = _Waiting(item)
        self._waiting.setdefault(key, []).append(waiting)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._sender(key))
        try:
            await asyncio.wait([waiting.sent], timeout=self._wait_turn)
        except asyncio.CancelledError:
            waiting.sent.cancel()  # its request went away before it left: never send it
            raise
        if not waiting.sent.done():
            waiting.sent.cancel()  # the sender leaves it out
            raise TurnTimeout(f"no turn to talk to {key} within {self._wait_turn:g} s")
        return await waiting.answer

    async def _sender(self, key: Key) -> None:
        group: list[_Waiting[Item, Result]] = []
        try:
            while queue := self._waiting.pop(key, []):
                group = [w for w in queue if not w.sent.cancelled()]
                if len(group) > self._most:
                    self._waiting[key] = group[self._most :] + self._waiting.get(key, [])
                    group = group[: self._most]
                for w in group:
                    w.sent.set_result(None)
                try:
                    results = await self._send(key, [w.item for w in group])
                except Exception as exc:  # the whole group's: every signup of it gets it
                    results = [exc] * len(group)
                for w, result in zip(group, results, strict=True):
                    if w.answer.done():  # its request went away meanwhile
                        continue
                    if isinstance(result, BaseException):
                        w.answer.set_exception(result)
                    else:
                        w.answer.set_result(result)
        finally:
            # No await since the queue was found empty (or the store closes): whoever queues
            # next starts a sender.
            del self._senders[key]
            for w in group:
                if not w.answer.done():  # closed while its group was out
                    w.answer.set_exception(ConnectionError("the store closed"))

    async def close(self) -> None:
        """Answer every signup still waiting for its turn, and stop the groups out."""
        for queue in self._waiting.values():
            for w in queue:
                if not w.answer.done():
                    w.answer.set_exception(ConnectionError("the store closed"))
                if not w.sent.done():
                    w.sent.set_result(None)
        self._waiting.clear()
        senders = list(self._senders.values())
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
