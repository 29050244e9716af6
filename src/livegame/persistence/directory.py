"""
The cluster's directory in Redis: node leases and the game-to-node map.

Each node keeps a lease, a key with a time to live that it refreshes; a node
whose lease has expired is presumed dead. Each game maps to ``(node,
epoch)``. A node claims a game atomically, in one Lua script, when the game
has no owner or its owner's lease has expired; a change of owner bumps the
epoch. The epoch only ever grows: releasing a game keeps it, so the next
owner's epoch is higher than every earlier one.

Keys, under the configured prefix::

    node:<node>          the lease: JSON {node, http, ws, started_ms}, with a TTL
    nodes                set of the nodes that have held a lease (live or
                         dead), so nobody scans the keyspace to find them
    owner:<game>         hash {node, incarnation, epoch}
    games:<node>         set of the games a node has claimed
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import orjson
import redis.asyncio as aioredis
import structlog

from livegame.errors import StorageError
from livegame.persistence._translate import redis_errors
from livegame.telemetry.tracing import child_span

log = structlog.get_logger("livegame.persistence.directory")

# Spans only inside a traced request (a move's placement, a forward's lookup);
# lease renewals and other background calls make none.
_REDIS: Final = {"db.system": "redis"}

# KEYS: owner hash, claimant's lease, claimant's games set.
# ARGV: claimant node id, lease key prefix, game id, claimant's incarnation.
# Returns {owner node, epoch}, or an error when the claimant has no lease.
# An earlier incarnation of the claimant (a node restarted under the same id)
# counts as another owner, and a dead one: the epoch grows, so whatever that
# incarnation still had in flight is fenced.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('NOLEASE this node holds no lease')
end
local owner = redis.call('HGET', KEYS[1], 'node')
local incarnation = redis.call('HGET', KEYS[1], 'incarnation')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if owner == ARGV[1] and incarnation == ARGV[4] then
  return {owner, epoch}
end
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return {owner, epoch}
end
epoch = epoch + 1
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'incarnation', ARGV[4], 'epoch', epoch)
redis.call('SADD', KEYS[3], ARGV[3])
return {ARGV[1], epoch}
"""

# KEYS: owner hash. ARGV: node id, least epoch, incarnation. Returns the
# epoch, or -1 when this incarnation of the node does not own the game.
_RAISE = """
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1]
  or redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[3] then
  return -1
end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local least = tonumber(ARGV[2])
if least > epoch then
  epoch = least
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
return epoch
"""

# KEYS: owner hash, node's games set. ARGV: node id, game id.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'node')
end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as its lease describes it."""

    node_id: str
    http: str
    ws: str
    started_ms: int
    # Milliseconds until the lease expires, as Redis reported it.
    ttl_ms: int


class RedisDirectory:
    """
    The directory, seen from one node.

    Args:
        client: a redis.asyncio client (decode_responses=False).
        node_id: this node.
        prefix: of every key, e.g. ``livegame:``.
        lease_ttl: seconds a lease lives without a refresh.
        http, ws: addresses other nodes use to reach this one.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        node_id: str,
        *,
        prefix: str = "livegame:",
        lease_ttl: float = 10.0,
        http: str = "",
        ws: str = "",
    ) -> None:
        self._client = client
        self.node_id = node_id
        self._prefix = prefix
        self.lease_ttl = lease_ttl
        self._http = http
        self._ws = ws
        self._started_ms = time.time_ns() // 1_000_000
        # Tells this process from an earlier one that ran under the same id.
        self.incarnation = secrets.token_hex(8)
        self._claim = client.register_script(_CLAIM)
        self._raise = client.register_script(_RAISE)
        self._release = client.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"<RedisDirectory {self.node_id} prefix={self._prefix!r}>"

    def _lease_key(self, node_id: str) -> str:
        return f"{self._prefix}node:{node_id}"

    def _owner_key(self, game_id: str) -> str:
        return f"{self._prefix}owner:{game_id}"

    def _games_key(self, node_id: str) -> str:
        return f"{self._prefix}games:{node_id}"

    @property
    def _nodes_key(self) -> str:
        return f"{self._prefix}nodes"

    # Leases.

    async def renew_lease(self) -> None:
        """Write this node's lease with a fresh time to live."""
        value = orjson.dumps(
            {
                "node": self.node_id,
                "http": self._http,
                "ws": self._ws,
                "started_ms": self._started_ms,
            }
        )
        lease = self._lease_key(self.node_id)
        with redis_errors("renew_lease", node=self.node_id):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(lease, value, px=int(self.lease_ttl * 1000))
                pipe.sadd(self._nodes_key, self.node_id)
                await pipe.execute()

    async def _known_nodes(self) -> list[str]:
        """Every node in the registry, live or dead, sorted."""
        return sorted(_text(m) for m in await self._client.smembers(self._nodes_key))

    async def drop_lease(self) -> None:
        """Delete this node's lease, so its games are free at once."""
        with redis_errors("drop_lease", node=self.node_id):
            await self._client.delete(self._lease_key(self.node_id))

    async def nodes(self) -> list[NodeInfo]:
        """Return every node holding a lease now."""
        with redis_errors("nodes"):
            known = await self._known_nodes()
            async with self._client.pipeline(transaction=False) as pipe:
                for node_id in known:
                    pipe.get(self._lease_key(node_id))
                    pipe.pttl(self._lease_key(node_id))
                replies = await pipe.execute()
        found = []
        for raw, ttl in zip(replies[::2], replies[1::2], strict=True):
            if raw is not None:
                data = orjson.loads(raw)
                found.append(
                    NodeInfo(
                        data["node"], data["http"], data["ws"], data["started_ms"], ttl
                    )
                )

        return found

    async def node(self, node_id: str) -> NodeInfo | None:
        """Return a node's lease, or None if it has none (it is presumed dead)."""
        with child_span("redis.lookup", _REDIS), redis_errors("node", node=node_id):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(self._lease_key(node_id))
                pipe.pttl(self._lease_key(node_id))
                raw, ttl = await pipe.execute()
        if raw is None:
            return None
        data = orjson.loads(raw)

        return NodeInfo(data["node"], data["http"], data["ws"], data["started_ms"], ttl)

    # Games.

    async def claim(self, game_id: str) -> tuple[str, int]:
        """
        Claim ``game_id`` unless a live node owns it; return (owner, epoch).

        Raises:
            StorageError: Redis failed, or this node holds no lease.
        """
        keys = [
            self._owner_key(game_id),
            self._lease_key(self.node_id),
            self._games_key(self.node_id),
        ]
        with child_span("redis.claim", _REDIS), redis_errors("claim", game_id=game_id):
            owner, epoch = await self._claim(
                keys=keys,
                args=[self.node_id, self._lease_key(""), game_id, self.incarnation],
            )

        return _text(owner), int(epoch)

    async def raise_epoch(self, game_id: str, at_least: int) -> int:
        """Lift this node's claim to at least ``at_least``; return the epoch."""
        raising = child_span("redis.raise_epoch", _REDIS)
        with raising, redis_errors("raise_epoch", game_id=game_id):
            epoch = int(
                await self._raise(
                    keys=[self._owner_key(game_id)],
                    args=[self.node_id, at_least, self.incarnation],
                )
            )
        if epoch < 0:
            raise StorageError(
                f"game {game_id} was claimed by another node meanwhile",
                game_id=game_id,
            )

        return epoch

    async def release(self, game_id: str) -> None:
        keys = [self._owner_key(game_id), self._games_key(self.node_id)]
        with redis_errors("release", game_id=game_id):
            await self._release(keys=keys, args=[self.node_id, game_id])

    async def release_all(self, game_ids: Sequence[str] | None = None) -> int:
        """Release every game this node claimed (or those given); return how many."""
        if game_ids is None:
            game_ids = await self.games_of(self.node_id)
        for game_id in game_ids:
            await self.release(game_id)

        return len(game_ids)

    async def owner(self, game_id: str) -> tuple[str | None, int]:
        """Return the game's (owner or None, epoch) as the directory has it."""
        with redis_errors("owner", game_id=game_id):
            node, epoch = await self._client.hmget(
                self._owner_key(game_id), "node", "epoch"
            )

        return (None if node is None else _text(node)), int(epoch or 0)

    async def games_of(self, node_id: str) -> list[str]:
        """Return the games ``node_id`` has claimed and not released."""
        with redis_errors("games_of", node=node_id):
            members = await self._client.smembers(self._games_key(node_id))

        return sorted(_text(m) for m in members)

    async def forget_node(self, node_id: str) -> None:
        """Drop a dead node once its games have been claimed elsewhere."""
        with redis_errors("forget_node", node=node_id):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(self._games_key(node_id))
                # Should it come back, its next renewal adds it again.
                pipe.srem(self._nodes_key, node_id)
                await pipe.execute()

    async def dead_nodes(self) -> list[str]:
        """Return nodes that still have a games set but no lease."""
        with redis_errors("dead_nodes"):
            known = await self._known_nodes()
            async with self._client.pipeline(transaction=False) as pipe:
                for node_id in known:
                    pipe.exists(self._lease_key(node_id))
                    pipe.exists(self._games_key(node_id))
                replies = await pipe.execute()
            dead: list[str] = []
            gone: list[str] = []
            for node_id, lease, games in zip(
                known, replies[::2], replies[1::2], strict=True
            ):
                if not lease:
                    (dead if games else gone).append(node_id)
            if gone:
                # Nodes that left nothing behind; a renewal adds one again.
                await self._client.srem(self._nodes_key, *gone)

        return dead


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
