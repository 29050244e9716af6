"""Directory and board cache while Redis restarts: errors, then recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio
from persistence_helpers import GameScript, wait_until

from livegame.app.embedded import EmbeddedServer, redis_server
from livegame.errors import StorageError
from livegame.persistence.cache import BoardCache
from livegame.persistence.directory import RedisDirectory
from livegame.persistence.requests import CommittedBatch
from livegame.persistence.state import initial_state

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A Redis of this test's own, which it may stop and start again."""
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
async def client(own_redis: EmbeddedServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(
        own_redis.url, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    yield client
    await client.aclose()


async def answers(check: object) -> bool:
    try:
        await check  # type: ignore[misc]
    except StorageError:
        return False
    return True


async def test_a_stopped_redis_is_a_storage_error_for_every_caller(
    own_redis: EmbeddedServer, client: redis.asyncio.Redis
) -> None:
    directory = RedisDirectory(client, "a", prefix="t:")
    cache = BoardCache(client, prefix="t:")
    board = initial_state(GameScript().created())

    own_redis.stop()

    with pytest.raises(StorageError):
        await directory.renew_lease()
    with pytest.raises(StorageError):
        await cache.read(board.game_id)
    cache.committed(CommittedBatch({board.game_id: board}, outbox_rows=1))
    await cache.drain()
    assert cache.failures == 1


async def test_leases_claims_and_the_cache_work_again_after_a_restart(
    own_redis: EmbeddedServer, client: redis.asyncio.Redis
) -> None:
    directory = RedisDirectory(client, "a", prefix="t:")
    cache = BoardCache(client, prefix="t:")
    board = initial_state(GameScript().created())
    await directory.renew_lease()
    assert await directory.claim("g1") == ("a", 1)

    own_redis.stop()
    with pytest.raises(StorageError):
        await directory.claim("g1")
    own_redis.start()

    # The new Redis is empty: the lease comes back with the next renewal,
    # and the claim scripts are loaded again.
    await wait_until(lambda: answers(directory.renew_lease()))
    assert await directory.claim("g2") == ("a", 1)
    cache.committed(CommittedBatch({board.game_id: board}, outbox_rows=1))
    await cache.drain()
    assert await cache.read(board.game_id) == board
