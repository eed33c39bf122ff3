"""Phase 4: phase 3's queue on a Redis Cluster, split into shards.

The signup's work is phase 3's one Lua script (signup.stores.queue), run on the primary that
owns the email's shard: every key it touches carries the shard's hash tag (signup._shards).
redis-py's RedisCluster routes it and keeps the map of the cluster; the signups bound for one
primary leave in groups (signup.stores._groups), one pipeline each.

Durability: Redis replicates asynchronously, so a primary that dies right after a 202 can take
the signup with it when its replica is promoted. With SIGNUP_WAIT_REPLICAS=n, the script and a
`WAIT n timeout` go to the primary in one pipeline, on one connection, and the 202 is sent only
when n replicas have the signup. WAIT counts the writes of its own connection, hence the
pipeline: a WAIT on another connection would count nothing and always pass. For the same
reason a script is never redirected while WAIT is asked (`_send` says how).

While a shard's primary is lost and its replica not yet promoted, that shard's signups get a
fast 503 with Retry-After (nothing was accepted, or the 202 was never sent); the other shards
go on. A signup whose WAIT timed out is kept and will become a row, but it was not confirmed:
503 too, and a retry finds the email taken (409), as `GET /signup/status` shows.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterError,
    MaxConnectionsError,
    MovedError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signup import _shards, _stream
from signup.config import Settings
from signup.stores import _groups
from signup.stores.base import Overloaded, Status, StoreUnavailable
from signup.stores.queue import ACCEPT, ACCEPTED, QueueStore
from signup.validation import SignupRequest

# With WAIT, a signup answered MOVED (its script ran nowhere) is sent again where the slot
# lives now; more moves than this in one request mean the cluster is resharding faster than
# it answers.
REROUTES = 3
# How long the shards of a node that just failed are refused without trying it again. The
# next try after it either works or finds the replica promoted (the store asks the cluster for
# its layout again after every failure).
BREAK_SECONDS = 1.0
# The most signups in one group: a pipeline this long is still one read for Redis, and a
# group that large answers its first signup no later than its last.
GROUP_MOST = 256


@dataclass(frozen=True)
class _Accept:
    """One signup's accept script, bound for `node`."""

    node: ClusterNode
    keys: tuple[str, str]
    args: tuple[str | bytes | int, ...]


class ShardUnavailable(Overloaded):
    """The email's shard has no primary that answers right now (a failover is under way)."""

    error_type = "shard_unavailable"
    message = "signups for this address are paused, retry later"


class NotReplicated(Overloaded):
    """WAIT timed out: the signup is kept, but fewer replicas than asked have it."""

    error_type = "not_replicated"
    message = "signup not confirmed, check GET /signup/status before retrying"


class _Cluster(RedisCluster):
    """redis-py's cluster client, meeting the nodes an ASK sends it to.

    While slots move to a node added since the client last read the cluster's layout (growing
    the cluster under load), Redis answers ASK with that node's address. redis-py looks the
    address up among the nodes it knows, finds none, and fails with an AttributeError, not a
    Redis error: the writer exited on it once in the failover bench. Here an unknown node is
    met on the spot, as redis-py itself does for a MOVED.
    """

    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        node = super().get_node(host, port, node_name)
        if node is None and node_name:
            node_host, _, node_port = node_name.rpartition(":")
            if node_host and node_port.isdigit():
                manager = self.nodes_manager
                node = ClusterNode(node_host, int(node_port), **manager.connection_kwargs)
                manager.nodes_cache[node.name] = node
        return node

    async def _determine_slot(self, command: str, *args: Any) -> int:
        """XREAD and XREADGROUP name their keys after STREAMS, a position redis-py does not
        parse: it asks a node (COMMAND GETKEYS, a round trip) before every read. The writer's
        idle polling made the first node answer 420 of those a second, 43 % of its quota in
        the scale model. Read here, it costs nothing."""
        if command.upper() in ("XREAD", "XREADGROUP"):
            words = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
            upper = [w.upper() for w in words]
            if "STREAMS" in upper:
                first = upper.index("STREAMS") + 1
                keys = words[first : first + (len(words) - first) // 2]
                slots = {self.keyslot(k) for k in keys}
                if len(slots) == 1:
                    return slots.pop()
        return await super()._determine_slot(command, *args)


async def refresh(client: RedisCluster) -> None:
    """Ask the cluster again which primary serves which slots. redis-py does so by itself
    after a failed single command; a failed pipeline leaves its map as it was, so the store and
    the writer call this after one. In-flight commands on other nodes are not disturbed."""
    await client.nodes_manager.initialize()


def startup_nodes(nodes: tuple[tuple[str, int], ...]) -> list[tuple[str, int]]:
    """Every address of every node named: Docker's DNS answers a scaled service's name
    (`redis-node`) with each container's address, and redis-py would keep the first one the
    resolver gives, and its connection. When that is a spare node outside the cluster (phase 4
    with REDIS_NODES=8), it knows no slots and the client never asks another node. Given each
    address, redis-py asks them in turn until one knows the cluster."""
    found: list[tuple[str, int]] = []
    for host, port in nodes:
        try:
            answers = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror:
            answers = []  # not resolvable now: redis-py tries the name, and says why it fails
        for address in [str(a[4][0]) for a in answers] or [host]:
            if (address, port) not in found:
                found.append((address, port))
    return found


def connect(settings: Settings, *, max_connections: int) -> RedisCluster:
    """A cluster client that fails fast: a node that does not answer is one quick error, and
    the next command asks the cluster again where the slot lives (see `refresh`)."""
    return _Cluster(
        startup_nodes=[
            ClusterNode(host, port) for host, port in startup_nodes(settings.redis_cluster_nodes)
        ],
        # A shard without its primary must not stop the others.
        require_full_coverage=False,
        max_connections=max_connections,
        socket_connect_timeout=_stream.CONNECT_TIMEOUT,
        socket_timeout=_stream.REPLY_TIMEOUT,
        # No retries inside redis-py: a pipeline's retry closes every connection of the client
        # first, failing the other shards' commands in flight on healthy nodes (seen here).
        retry=Retry(NoBackoff(), 0),
    )


class ClusterStore(QueueStore):
    backend = "queue"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cluster = connect(settings, max_connections=settings.pool_max)
        self._redis = self._cluster  # QueueStore's status() and close() use it
        self._max_backlog = math.ceil(settings.max_backlog / settings.shards)
        self._backlog = 0
        # Signups bound for one node leave together, one group in flight per node (_groups
        # says why). A node that hangs holds only its own signups: its group waits out the
        # socket timeouts, the signups behind it at most pool_timeout for their turn. And
        # redis-py's cluster pool, which fails at once when it has no free connection, needs
        # one per node for them (status reads take others).
        self._groups: _groups.Groups[str, _Accept, tuple[Any, Any]] = _groups.Groups(
            self._send, wait_turn=settings.pool_timeout, most=GROUP_MOST
        )
        # Nodes that just failed, and until when their shards are refused without trying:
        # a host that is gone costs a connect timeout per try, and a failover takes seconds.
        self._down: dict[str, float] = {}
        # A pipeline failed on a node: which primary serves which slot may have changed.
        self._stale = False

    def _stream_of(self, email: str) -> str:
        return _shards.stream_of(self._settings.stream, self._settings.shards, email)

    async def _run_accept(
        self, keys: tuple[str, str], args: tuple[str | bytes | int, ...]
    ) -> tuple[int, int]:
        await self._cluster.initialize()  # once; a no-op after
        wanted = self._settings.wait_replicas
        for _ in range(REROUTES):
            if self._stale:
                self._stale = False
                await refresh(self._cluster)
            node = self._cluster.get_node_from_key(keys[0])
            if node is None:  # a slot no primary serves (a shard lost with its replica)
                raise ShardUnavailable(self._settings.retry_after_seconds, f"{keys[0]}: no node")
            if self._down.get(node.name, 0.0) > time.monotonic():
                raise ShardUnavailable(
                    self._settings.retry_after_seconds, f"{node.name} failed just now"
                )
            try:
                script, waited = await self._groups.submit(node.name, _Accept(node, keys, args))
            except _groups.TurnTimeout as exc:
                raise Overloaded(self._settings.retry_after_seconds, str(exc)) from None
            except MovedError:
                # With WAIT, the script went to the node the slot map named and ran nowhere:
                # the slot moved meanwhile. Send it where the slot lives now.
                continue
            outcome, backlog = (int(v) for v in script)
            if outcome != ACCEPTED or not wanted:
                return outcome, backlog
            if isinstance(waited, Exception) or int(waited) < wanted:
                raise NotReplicated(
                    self._settings.retry_after_seconds,
                    f"WAIT {wanted} on {node.name}: {waited!r} within "
                    f"{self._settings.wait_timeout_ms} ms",
                )
            return outcome, backlog
        raise ShardUnavailable(
            self._settings.retry_after_seconds,
            f"slot of {keys[0]} moved {REROUTES} times in one signup",
        )

    async def _send(self, name: str, group: list[_Accept]) -> list[tuple[Any, Any] | BaseException]:
        """Every accept script of `group`, then WAIT if asked, to their node on one connection:
        each signup's script result (or error) with the WAIT's, which counts them all.

        With WAIT, redis-py must not follow a MOVED or ASK itself: it sends the script again on
        its own, to another node, after the pipeline and its WAIT are done, and the WAIT would
        confirm a write it never saw. So every script goes to `name`'s node, and an answer
        that names another node comes back as that signup's error: MOVED (the script ran
        nowhere) is sent again where the slot lives now, ASK or TRYAGAIN (a slot half moved)
        is a 503 and a retry. Without WAIT redis-py follows them."""
        wanted = self._settings.wait_replicas
        node = group[0].node
        if self._down.get(name, 0.0) > time.monotonic():
            # The group before this one failed on the node: do not pay its timeout again.
            gone = ShardUnavailable(self._settings.retry_after_seconds, f"{name} failed just now")
            return [gone] * len(group)
        try:
            async with self._cluster.pipeline(transaction=False) as pipe:
                for accept in group:
                    # EVAL, not EVALSHA: a replica promoted a moment ago has no script cache,
                    # and a NOSCRIPT in the middle of a failover is one more error for nothing.
                    pipe.execute_command(
                        "EVAL", ACCEPT, 2, *accept.keys, *accept.args, target_nodes=node
                    )
                if wanted:
                    pipe.execute_command(
                        "WAIT", wanted, self._settings.wait_timeout_ms, target_nodes=node
                    )
                # A failed WAIT (sent to a node that became a replica meanwhile) must not hide
                # the scripts' own results: errors come back as values.
                results = await pipe.execute(raise_on_error=False, allow_redirections=not wanted)
        except (RedisConnectionError, RedisTimeoutError, ClusterError) as exc:
            self._failed(name, exc)
            raise
        scripts = results[: len(group)]
        waited = results[-1] if wanted else None
        for r in scripts:
            if isinstance(r, RedisConnectionError | RedisTimeoutError | ClusterError):
                self._failed(name, r)
        moved = next((r for r in scripts if isinstance(r, MovedError)), None)
        if moved is not None:
            await self._cluster.nodes_manager.move_slot(moved)
        return [r if isinstance(r, Exception) else (r, waited) for r in scripts]

    def _failed(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, MaxConnectionsError):
            return  # this client's own pool was full (status reads): the node is fine
        self._down[name] = time.monotonic() + BREAK_SECONDS
        self._stale = True

    async def close(self) -> None:
        await self._groups.close()
        await super().close()

    def _failure(self, exc: RedisError) -> StoreUnavailable | Overloaded:
        # MOVED or ASK that redis-py's one redirection did not settle: the slot is moving.
        moving = AskError | TryAgainError
        if isinstance(exc, RedisConnectionError | RedisTimeoutError | ClusterError | moving):
            return ShardUnavailable(self._settings.retry_after_seconds, f"redis cluster: {exc}")
        return super()._failure(exc)

    async def create(self, signup: SignupRequest) -> dict[str, object]:
        try:
            return await super().create(signup)
        except RedisClusterException as exc:
            # No node answers for the slot at all (the client's own error, not a RedisError).
            raise ShardUnavailable(
                self._settings.retry_after_seconds, f"redis cluster: {exc}"
            ) from exc

    async def status(self, email: str) -> Status | None:
        try:
            return await super().status(email)
        except RedisClusterException as exc:
            raise StoreUnavailable(f"redis cluster: {exc}") from exc

    async def check_ready(self) -> None:
        """Ready when the cluster says its state is ok (every slot served)."""
        try:
            await self._cluster.initialize()
            info = await self._cluster.cluster_info()
        except (RedisError, RedisClusterException) as exc:
            raise StoreUnavailable(f"redis cluster: {exc}") from exc
        state = info.get("cluster_state") if isinstance(info, dict) else None
        if state != "ok":
            raise StoreUnavailable(f"redis cluster state is {state!r}")
