"""The Redis directory: leases, atomic claims, epochs that only grow."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio

from livegame.errors import StorageError
from livegame.persistence.directory import RedisDirectory

pytestmark = pytest.mark.anyio


def directory(
    client: redis.asyncio.Redis, prefix: str, node: str, ttl: float = 10.0
) -> RedisDirectory:
    return RedisDirectory(
        client, node, prefix=prefix, lease_ttl=ttl, http=f"http://{node}:8080"
    )


async def test_a_node_without_a_lease_cannot_claim(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")

    with pytest.raises(StorageError, match="NOLEASE"):
        await a.claim("g1")


async def test_the_first_claim_wins_and_others_see_the_owner(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")
    b = directory(redis_client, redis_prefix, "b")
    await a.renew_lease()
    await b.renew_lease()

    assert await a.claim("g1") == ("a", 1)
    assert await b.claim("g1") == ("a", 1)
    assert await a.claim("g1") == ("a", 1)
    assert await a.games_of("a") == ["g1"]
    assert await b.owner("g1") == ("a", 1)


async def test_concurrent_claims_elect_exactly_one_owner(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    nodes = [directory(redis_client, redis_prefix, f"n{i}") for i in range(8)]
    for node in nodes:
        await node.renew_lease()
    results: list[tuple[str, int]] = []

    async def claim(node: RedisDirectory) -> None:
        results.append(await node.claim("contested"))

    async with anyio.create_task_group() as tg:
        for node in nodes:
            tg.start_soon(claim, node)

    assert len(set(results)) == 1
    assert results[0][1] == 1


async def test_a_game_of_a_node_whose_lease_expired_is_claimed_with_a_new_epoch(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")
    b = directory(redis_client, redis_prefix, "b")
    await a.renew_lease()
    await b.renew_lease()
    await a.claim("g1")

    await a.drop_lease()

    assert await b.claim("g1") == ("b", 2)
    assert await b.dead_nodes() == ["a"]


async def test_nodes_are_found_without_scanning_and_forgotten_once_empty(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")
    b = directory(redis_client, redis_prefix, "b")
    c = directory(redis_client, redis_prefix, "c")
    for node in (a, b, c):
        await node.renew_lease()
    await a.claim("g1")
    await c.drop_lease()
    await a.drop_lease()

    assert [n.node_id for n in await b.nodes()] == ["b"]
    assert await b.dead_nodes() == ["a"]
    registry = f"{redis_prefix}nodes"
    # c left no games behind: it is forgotten; a waits for adoption.
    assert await redis_client.smembers(registry) == {b"a", b"b"}
    await b.forget_node("a")
    assert await b.dead_nodes() == []
    assert await redis_client.smembers(registry) == {b"b"}
    await c.renew_lease()
    assert [n.node_id for n in await b.nodes()] == ["b", "c"]


async def test_release_keeps_the_epoch_growing(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")
    b = directory(redis_client, redis_prefix, "b")
    await a.renew_lease()
    await b.renew_lease()
    await a.claim("g1")

    assert await a.release_all() == 1

    assert await a.games_of("a") == []
    assert await b.claim("g1") == ("b", 2)


async def test_raise_epoch_lifts_only_the_owners_claim(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a")
    b = directory(redis_client, redis_prefix, "b")
    await a.renew_lease()
    await b.renew_lease()
    await a.claim("g1")

    assert await a.raise_epoch("g1", 7) == 7
    assert await a.raise_epoch("g1", 3) == 7
    with pytest.raises(StorageError):
        await b.raise_epoch("g1", 9)


async def test_nodes_lists_live_leases_with_their_addresses(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a = directory(redis_client, redis_prefix, "a", ttl=30)
    await a.renew_lease()

    [node] = await a.nodes()

    assert node.node_id == "a"
    assert node.http == "http://a:8080"
    assert 0 < node.ttl_ms <= 30_000
    assert await a.node("missing") is None


async def test_an_unreachable_redis_is_a_storage_error() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        with pytest.raises(StorageError, match="redis"):
            await directory(client, "x:", "a").renew_lease()
    finally:
        await client.aclose()


async def test_a_restarted_node_reclaims_its_games_with_a_new_epoch(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    before = directory(redis_client, redis_prefix, "a")
    await before.renew_lease()
    await before.claim("g1")

    after = directory(redis_client, redis_prefix, "a")
    await after.renew_lease()

    assert await after.claim("g1") == ("a", 2)
    assert await after.games_of("a") == ["g1"]
