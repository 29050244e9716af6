"""A node while Kafka or Redis is down: moves go on, and it recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
import redis.asyncio
import structlog.testing
from node_helpers import (
    Api,
    api_client,
    dance,
    eventually,
    http_base,
    kafka_events,
    watching,
    ws_url,
)

from livegame.app.config import Settings
from livegame.app.embedded import EmbeddedServer, kafka_server, redis_server
from livegame.app.node import Node, open_node

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A broker of this test's own, to stop and start again."""
    with kafka_server(tmp_path) as broker:
        yield broker


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A Redis of this test's own, to stop and start again on the same port."""
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
async def running(node_env: dict[str, str]) -> AsyncIterator[tuple[Node, Api]]:
    """A node on ``node_env`` as the test left it, and an HTTP client of it."""
    async with (
        open_node(Settings.from_env(node_env)) as node,
        api_client(http_base(node.settings)) as api,
    ):
        yield node, api


async def unpublished_plies(postgres: asyncpg.Pool, game_id: str) -> list[int]:
    rows = await postgres.fetch(
        "SELECT (payload->>'ply')::int AS ply FROM outbox"
        " WHERE game_id = $1 AND type = 'move_played' AND published_at IS NULL"
        " ORDER BY seq",
        game_id,
    )
    return [row["ply"] for row in rows]


async def plies_in_postgres(postgres: asyncpg.Pool, game_id: str) -> list[int]:
    rows = await postgres.fetch(
        "SELECT ply FROM game_moves WHERE game_id = $1 ORDER BY ply", game_id
    )
    return [row["ply"] for row in rows]


@pytest.fixture
def kafka_env(node_env: dict[str, str], private_kafka: EmbeddedServer) -> None:
    node_env["KAFKA_BOOTSTRAP_SERVERS"] = private_kafka.url


@pytest.mark.usefixtures("kafka_env")
async def test_moves_are_acknowledged_while_kafka_is_down_and_all_arrive_after(
    running: tuple[Node, Api],
    private_kafka: EmbeddedServer,
    postgres: asyncpg.Pool,
    kafka_topic: str,
) -> None:
    node, api = running
    first = await api.create_game("alice", "bob")
    second = await api.create_game("dan", "eve")
    async with kafka_events(private_kafka.url, kafka_topic) as kafka:
        await api.play(first, [dance(0), dance(1)])
        await api.play(second, [dance(0), dance(1)], players=("dan", "eve"))
        await kafka.wait_for_plies(first, 2)
        await kafka.wait_for_plies(second, 2)

    with structlog.testing.capture_logs() as logs:
        private_kafka.kill()

        # Kafka is off the ack path: every move is answered long before the
        # producer's ten-second request timeout could pass.
        with anyio.fail_after(5):
            async with (
                watching(ws_url(node.settings), "alice") as alice,
                watching(ws_url(node.settings), "bob") as bob,
            ):
                for ply in range(2, 8):
                    ack = await (alice, bob)[ply % 2].move(first, dance(ply), ply)
                    assert ack["type"] == "ack", ack
            await api.play(second, [dance(p) for p in range(2, 8)], 2, ("dan", "eve"))

        # The backlog waits in the outbox, in PostgreSQL, for all to see.
        backlog = [3, 4, 5, 6, 7, 8]
        await eventually(lambda: unpublished_are(postgres, first, backlog))
        await eventually(lambda: unpublished_are(postgres, second, backlog))
        # And in the node's metrics, measured every five seconds.
        await eventually(lambda: outbox_gauge_reaches(api, 12), timeout=15)

        # The outage lasts until the relay has given up on its sends: a
        # producer that outlives a restart of the in-memory test broker gets
        # acknowledgements for records no consumer can read (a quirk of that
        # broker, not of Kafka).
        await eventually(lambda: relay_failed(logs), timeout=30)

    await anyio.to_thread.run_sync(private_kafka.start)
    await eventually(lambda: unpublished_are(postgres, first, []), 30)
    await eventually(lambda: unpublished_are(postgres, second, []), 30)

    # The restarted broker forgot its topics: what it holds now is what the
    # relay published after the outage, which must be the whole backlog.
    async with kafka_events(private_kafka.url, kafka_topic) as kafka:
        for game_id in (first, second):
            await kafka.wait_for_plies(game_id, 8, since=3)
            plies = [m["ply"] for m in kafka.moves(game_id)]
            assert plies == sorted(plies)

    for game_id in (first, second):
        assert await plies_in_postgres(postgres, game_id) == list(range(1, 9))


async def outbox_gauge_reaches(api: Api, rows: int) -> bool:
    async with api.session.get(f"{api.base}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("live_game_outbox_backlog "):
            return float(line.split()[1]) >= rows
    return False


def relay_failed(logs: list[MutableMapping[str, Any]]) -> bool:
    return any(
        e["event"] == "relay_failed" and e.get("backend") == "kafka" for e in logs
    )


async def unpublished_are(
    postgres: asyncpg.Pool, game_id: str, plies: list[int]
) -> bool:
    return await unpublished_plies(postgres, game_id) == plies


@pytest.fixture
def redis_env(
    node_env: dict[str, str], private_redis: EmbeddedServer, redis_prefix: str
) -> None:
    node_env["REDIS_URL"] = private_redis.url
    node_env["LEASE_TTL_SECONDS"] = "1.5"


@pytest.mark.usefixtures("redis_env")
async def test_a_node_rides_out_a_redis_restart_and_recovers_by_itself(
    running: tuple[Node, Api],
    private_redis: EmbeddedServer,
    postgres: asyncpg.Pool,
    redis_prefix: str,
) -> None:
    node, api = running
    game_id = await api.create_game("alice", "bob")
    ply = await api.play(game_id, [dance(p) for p in range(2)])
    lease = f"{redis_prefix}node:{node.settings.node_id}"
    client = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        assert await client.exists(lease)

        private_redis.kill()
        await eventually(lambda: not_ready(api))

        # The game is owned here and fenced in PostgreSQL: it plays on.
        ply = await api.play(game_id, [dance(p) for p in range(ply, 6)], ply)
        board = await api.request("GET", f"/api/games/{game_id}/board", user="carol")
        assert (board.status, board.body["ply"]) == (200, 6), board
        # A new game is placed by its epoch in PostgreSQL alone.
        during = await api.create_game("frank", "grace")
        await api.play(during, [dance(0)], players=("frank", "grace"))

        # Redis comes back empty: no lease, no directory, no cache.
        await anyio.to_thread.run_sync(private_redis.start)
        await eventually(api.is_ready)
        await eventually(lambda: holds(client, lease))

        ply = await api.play(game_id, [dance(p) for p in range(ply, 8)], ply)
        fresh = await api.create_game("dan", "eve")
        await api.play(fresh, [dance(0)], players=("dan", "eve"))
        owner = await client.hget(f"{redis_prefix}owner:{fresh}", "node")
        assert owner == node.settings.node_id.encode()
        await api.play(during, [dance(1)], 1, ("frank", "grace"))
    finally:
        await client.aclose()

    assert await plies_in_postgres(postgres, game_id) == list(range(1, 9))
    assert await plies_in_postgres(postgres, during) == [1, 2]


async def holds(client: redis.asyncio.Redis, key: str) -> bool:
    try:
        return bool(await client.exists(key))
    except redis.ConnectionError:  # a pooled connection from before the restart
        return False


async def not_ready(api: Api) -> bool:
    reply = await api.request("GET", "/ready")
    return reply.status == 503 and reply.body["checks"]["redis"]["ok"] is False
