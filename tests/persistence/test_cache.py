"""The Redis board cache, written from committed batches."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio

from livegame.actors.game.events import GameCreated
from livegame.persistence.cache import BoardCache
from livegame.persistence.requests import CommittedBatch
from livegame.persistence.state import initial_state

pytestmark = pytest.mark.anyio


def created(game_id: str) -> GameCreated:
    return GameCreated(game_id, 1, "alice", "bob", 60_000, 1_000, 1_700_000_000_000)


async def test_a_committed_board_can_be_read_back(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    cache = BoardCache(redis_client, prefix=redis_prefix)
    board = initial_state(created("g1"))

    cache.committed(CommittedBatch({"g1": board}, outbox_rows=1))
    await cache.drain()

    assert await cache.read("g1") == board
    assert await cache.read("unknown") is None


async def test_the_newest_board_of_a_game_wins(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    cache = BoardCache(redis_client, prefix=redis_prefix)
    first = initial_state(created("g1"))
    later = first.__class__(**{**_fields(first), "ply": 1, "seq": 2})

    cache.committed(CommittedBatch({"g1": first}, outbox_rows=1))
    cache.committed(CommittedBatch({"g1": later}, outbox_rows=1))
    await cache.drain()

    cached = await cache.read("g1")
    assert cached is not None
    assert (cached.ply, cached.seq) == (1, 2)


async def test_a_batch_larger_than_a_script_call_is_written_whole_with_a_ttl(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    cache = BoardCache(redis_client, prefix=redis_prefix, ttl_seconds=120)
    boards = {f"g{i}": initial_state(created(f"g{i}")) for i in range(600)}

    await cache.write(boards)

    assert [await cache.read(game) for game in ("g0", "g299", "g599")] == [
        boards["g0"],
        boards["g299"],
        boards["g599"],
    ]
    keys = [f"{redis_prefix}board:g{i}" for i in range(600)]
    assert await redis_client.exists(*keys) == 600
    ttl = await redis_client.ttl(f"{redis_prefix}board:g599")
    assert 0 < ttl <= 120


async def test_a_failed_write_is_counted_and_does_not_raise() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    cache = BoardCache(client, prefix="x:")
    try:
        cache.committed(CommittedBatch({"g1": initial_state(created("g1"))}, 1))
        with anyio.fail_after(10):
            await cache.drain()
        assert cache.failures == 1
    finally:
        await client.aclose()


def _fields(board: object) -> dict[str, object]:
    return {name: getattr(board, name) for name in board.__dataclass_fields__}  # type: ignore[attr-defined]
