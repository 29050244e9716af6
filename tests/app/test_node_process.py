"""Nodes as processes (``livegame serve``): killed with SIGKILL, drained by SIGTERM."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable

import aiohttp
import anyio
import asyncpg
import pytest
import redis.asyncio
from node_helpers import (
    Api,
    NodeProcess,
    WatcherClosed,
    api_client,
    dance,
    eventually,
    kafka_events,
    mover,
    watching,
)
from websockets.exceptions import ConnectionClosed

from livegame.app.embedded import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

Spawn = Callable[[dict[str, str]], NodeProcess]

# Fewer than the sixteen plies after which the knight dance repeats fivefold.
MOVES_PER_GAME = 14


async def plies_in_postgres(postgres: asyncpg.Pool, game_id: str) -> list[int]:
    rows = await postgres.fetch(
        "SELECT ply FROM game_moves WHERE game_id = $1 ORDER BY ply", game_id
    )
    return [row["ply"] for row in rows]


async def answers(api: Api, game_id: str) -> bool:
    reply = await api.request("GET", f"/api/games/{game_id}", user="carol")
    return reply.status == 200


@pytest.mark.parametrize("successor", ["same_node_id", "other_node_id"])
async def test_acknowledged_moves_survive_sigkill_and_the_game_goes_on_elsewhere(
    successor: str,
    node_env: dict[str, str],
    spawn_node: Spawn,
    postgres: asyncpg.Pool,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> None:
    node_env["LEASE_TTL_SECONDS"] = "2"
    first = spawn_node(node_env)

    async with kafka_events(kafka_bootstrap, kafka_topic) as kafka:
        async with api_client(first.http) as api:
            await first.wait_ready(api)
            game_id = await api.create_game("alice", "bob")

            # The spectator sees four moves, then loses its connection.
            async with watching(first.ws, "carol") as spectator:
                await spectator.subscribe(game_id)
                seen = await api.play(game_id, [dance(p) for p in range(4)])
                await spectator.wait_for(lambda f: f.get("ply") == seen)

            acked = await api.play(game_id, [dance(p) for p in range(4, 8)], 4)
            epoch = await postgres.fetchval(
                "SELECT epoch FROM games WHERE id = $1", game_id
            )

            # One more move is on its way when the node dies: it may or may
            # not have been committed, and no one was told either way.
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(move_quietly, api, game_id, acked)
                await anyio.wait_all_tasks_blocked()
                first.kill()

        successor_env = {
            **node_env,
            "HTTP_PORT": str(free_port()),
            "WS_PORT": str(free_port()),
        }
        if successor == "other_node_id":
            successor_env["NODE_ID"] = f"node-{secrets.token_hex(3)}"
        second = spawn_node(successor_env)

        async with api_client(second.http) as api:
            await second.wait_ready(api)
            # Another id waits for the dead node's lease to expire; the same
            # id is a new incarnation, which the directory fences at once.
            await eventually(lambda: answers(api, game_id), timeout=15)

            plies = await plies_in_postgres(postgres, game_id)
            assert plies in (list(range(1, 9)), list(range(1, 10)))
            reached = plies[-1]
            game = await api.game(game_id)
            assert game["ply"] == reached
            assert (
                await postgres.fetchval(
                    "SELECT epoch FROM games WHERE id = $1", game_id
                )
                > epoch
            )

            async with watching(second.ws, "carol") as spectator:
                state = await spectator.subscribe(game_id, since=seen)
                assert state["game"]["ply"] == reached
                await spectator.wait_for(lambda f: f.get("ply") == reached)
                assert spectator.pushed(game_id) == [
                    ("move", p) for p in range(seen + 1, reached + 1)
                ]

                assert await api.play(game_id, [dance(reached)], reached) == reached + 1
                await spectator.wait_for(lambda f: f.get("ply") == reached + 1)

        moves = await kafka.wait_for_plies(game_id, reached + 1)

    assert [m["ply"] for m in moves] == list(range(1, reached + 2))
    assert await plies_in_postgres(postgres, game_id) == list(range(1, reached + 2))


async def move_quietly(api: Api, game_id: str, ply: int) -> None:
    """Send a move whose answer, if any, nobody will read."""
    try:
        await api.move(game_id, mover(ply), dance(ply), ply)
    except Exception:  # the node is being killed under it
        return


async def test_sigterm_drains_moves_in_flight_and_releases_the_lease(
    node_env: dict[str, str],
    spawn_node: Spawn,
    postgres: asyncpg.Pool,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
) -> None:
    node_env.update(USER_RATE="1000", WS_RATE="1000", LOG_LEVEL="INFO")
    node = spawn_node(node_env)
    acked: dict[str, list[int]] = {}

    async def over_http(api: Api, game_id: str, players: tuple[str, str]) -> None:
        for ply in range(MOVES_PER_GAME):
            try:
                reply = await api.move(game_id, players[ply % 2], dance(ply), ply)
            except aiohttp.ClientError:  # the node closed the connection
                return
            if reply.status != 200:
                return
            acked[game_id].append(reply.body["ply"])

    async def over_websocket(game_id: str, players: tuple[str, str]) -> None:
        async with (
            watching(node.ws, players[0]) as white,
            watching(node.ws, players[1]) as black,
        ):
            for ply in range(MOVES_PER_GAME):
                sender = (white, black)[ply % 2]
                try:
                    reply = await sender.move(game_id, dance(ply), ply)
                except (WatcherClosed, ConnectionClosed):  # the node closed it
                    return
                if reply["type"] != "ack":
                    return
                acked[game_id].append(reply["result"]["ply"])

    async with api_client(node.http) as api:
        await node.wait_ready(api)
        players = [(f"w{i}", f"b{i}") for i in range(6)]
        games = [await api.create_game(w, b) for w, b in players]
        acked.update({game_id: [] for game_id in games})

        async with anyio.create_task_group() as tasks:
            for index, (game_id, pair) in enumerate(zip(games, players, strict=True)):
                if index % 2:
                    tasks.start_soon(over_websocket, game_id, pair)
                else:
                    tasks.start_soon(over_http, api, game_id, pair)
            await eventually(lambda: all(len(p) >= 2 for p in acked.values()))
            node.signal(signal.SIGTERM)

    assert await node.wait_exit(timeout=40) == 0, node.log()
    log = node.log()
    assert "node_released" in log
    assert "restarting" not in log, "the drain restarted an actor it stopped"
    for game_id, plies in acked.items():
        assert plies == list(range(1, len(plies) + 1))
        committed = await plies_in_postgres(postgres, game_id)
        assert committed[: len(plies)] == plies
        in_outbox = await postgres.fetch(
            "SELECT (payload->>'ply')::int AS ply FROM outbox"
            " WHERE game_id = $1 AND type = 'move_played' ORDER BY seq",
            game_id,
        )
        assert [row["ply"] for row in in_outbox] == committed

    node_id = node_env["NODE_ID"]
    assert not await redis_client.exists(f"{redis_prefix}node:{node_id}")
    assert not await redis_client.smembers(f"{redis_prefix}games:{node_id}")
    for game_id in games:
        assert await redis_client.hget(f"{redis_prefix}owner:{game_id}", "node") is None


async def test_a_node_restarted_under_its_id_adopts_the_games_it_held_before(
    node_env: dict[str, str], spawn_node: Spawn, postgres: asyncpg.Pool
) -> None:
    first = spawn_node(node_env)
    async with api_client(first.http) as api:
        await first.wait_ready(api)
        game_id = await api.create_game("alice", "bob", {"initial": 1, "increment": 0})
        # After two plies white's clock runs; it runs out within a second.
        await api.play(game_id, [dance(0), dance(1)])
    first.kill()

    second = spawn_node(
        {**node_env, "HTTP_PORT": str(free_port()), "WS_PORT": str(free_port())}
    )
    async with api_client(second.http) as api:
        await second.wait_ready(api)

        # Nobody asks for the game: only its adoption can make its flag fall.
        await eventually(lambda: has_status(postgres, game_id, "timeout"), 5)


async def has_status(postgres: asyncpg.Pool, game_id: str, status: str) -> bool:
    found = await postgres.fetchval("SELECT status FROM games WHERE id = $1", game_id)
    return bool(found == status)
