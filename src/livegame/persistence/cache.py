"""
The Redis cache of game boards: FEN, ply, status, clocks and seq per game.

It is written after each commit, from the writer's report of the batch, in
one script call per batch and off the moves' critical path; it
serves ``GET /api/games/{id}/board``. A cached board is trusted only as far
as its ``seq``: whoever needs the truth compares it with PostgreSQL's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson
import redis.asyncio as aioredis
import structlog

from livegame.errors import StorageError
from livegame.persistence._translate import redis_errors
from livegame.persistence.requests import CommittedBatch
from livegame.persistence.state import BoardState

log = structlog.get_logger("livegame.persistence.cache")

# Boards of games nobody touched for a day leave the cache.
DEFAULT_TTL_SECONDS = 24 * 3600

# Sets KEYS[i] to ARGV[i + 1], each to expire after ARGV[1] seconds. One
# command for a batch costs the client a third of a pipeline of SETs.
_SET_ALL = """
local ttl = ARGV[1]
for i = 1, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl)
end
return #KEYS
"""

# Boards per script call, so that no single call holds Redis for long.
_CHUNK = 256


def encode_board(board: BoardState) -> bytes:
    return orjson.dumps(
        {
            "fen": board.fen,
            "ply": board.ply,
            "seq": board.seq,
            "status": board.status,
            "winner": board.winner,
            "reason": board.reason,
            "white_ms": board.white_ms,
            "black_ms": board.black_ms,
            "increment_ms": board.increment_ms,
            "draw_offer": board.draw_offer,
            "updated_at_ms": board.updated_at_ms,
        }
    )


def decode_board(game_id: str, raw: bytes) -> BoardState:
    data = orjson.loads(raw)
    return BoardState(game_id=game_id, **data)


class BoardCache:
    """
    Cached boards in Redis; a :class:`CommitListener` of the writer.

    Writes from :meth:`committed` are fire-and-forget: a failed write is
    logged and the board is simply missing or older in the cache, which
    readers tolerate. Writes of one game never overtake each other: each
    batch is written in commit order.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "livegame:",
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        # Boards waiting to be written, newest per game.
        self._pending: dict[str, BoardState] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._set_all = client.register_script(_SET_ALL)
        self.failures = 0

    def __repr__(self) -> str:
        return f"<BoardCache pending={len(self._pending)} failures={self.failures}>"

    def _key(self, game_id: str) -> str:
        return f"{self._prefix}board:{game_id}"

    def committed(self, batch: CommittedBatch) -> None:
        """Queue the batch's boards; one write task drains the queue."""
        self._pending.update(batch.states)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            boards, self._pending = self._pending, {}
            try:
                await self.write(boards)
            except StorageError as error:
                self.failures += 1
                log.warning(
                    "board_cache_write_failed", boards=len(boards), error=str(error)
                )

    async def write(self, boards: Mapping[str, BoardState]) -> None:
        """Write ``boards``, a script call per chunk of them."""
        items = list(boards.items())
        with redis_errors("cache_write", boards=len(boards)):
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                await self._set_all(
                    keys=[self._key(game_id) for game_id, _ in chunk],
                    args=[self._ttl, *(encode_board(board) for _, board in chunk)],
                )

    async def read(self, game_id: str) -> BoardState | None:
        """Return the cached board of a game, or None on a miss."""
        with redis_errors("cache_read", game_id=game_id):
            raw = await self._client.get(self._key(game_id))

        if raw is None:
            return None
        return decode_board(game_id, raw.encode() if isinstance(raw, str) else raw)

    async def drain(self) -> None:
        """Wait until every queued board has been written (or failed)."""
        task = self._flushing
        if task is not None:
            await asyncio.shield(task)
