"""Several nodes: commands forwarded to a game's node, events fanned out, failover."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import asyncpg
import pytest
from node_helpers import (
    Api,
    NodeProcess,
    api_client,
    dance,
    eventually,
    http_base,
    token,
    watching,
    ws_url,
)

from livegame.app.config import Settings
from livegame.app.embedded import free_port
from livegame.app.node import open_node

pytestmark = pytest.mark.anyio


def second_node(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "NODE_ID": f"node-{secrets.token_hex(3)}",
        "HTTP_PORT": str(free_port()),
        "WS_PORT": str(free_port()),
    }


async def test_a_command_sent_to_any_node_runs_on_the_games_node(
    node_env: dict[str, str], api: Api
) -> None:
    game_id = await api.create_game()
    await api.play(game_id, [dance(0)])  # the first node now serves the game

    async with (
        open_node(Settings.from_env(second_node(node_env))) as other,
        api_client(http_base(other.settings)) as other_api,
    ):
        ply = await other_api.play(game_id, [dance(1), dance(2)], first_ply=1)
        seen_here = await api.game(game_id)
        seen_there = await other_api.game(game_id)

        assert ply == 3
        assert seen_here["moves"] == seen_there["moves"] == [dance(i) for i in range(3)]
        assert other.service.games.local(game_id) is None


async def test_a_watcher_on_another_node_sees_every_move_in_order(
    node_env: dict[str, str], api: Api
) -> None:
    game_id = await api.create_game()
    await api.play(game_id, [dance(0)])

    async with (
        open_node(Settings.from_env(second_node(node_env))) as other,
        watching(ws_url(other.settings), "carol") as spectator,
    ):
        state = await spectator.subscribe(game_id, since=0)
        await api.play(game_id, [dance(i) for i in range(1, 6)], first_ply=1)
        await spectator.wait_for(lambda f: f["type"] == "move" and f["ply"] == 6)

        assert state["game"]["ply"] >= 1
        assert [ply for kind, ply in spectator.pushed(game_id)] == list(range(1, 7))


async def test_a_refusal_from_the_games_node_comes_back_unchanged(
    node_env: dict[str, str], api: Api
) -> None:
    game_id = await api.create_game()
    await api.play(game_id, [dance(0)])

    async with (
        open_node(Settings.from_env(second_node(node_env))) as other,
        api_client(http_base(other.settings)) as other_api,
    ):
        stale = await other_api.move(game_id, "bob", dance(1), 0)
        illegal = await other_api.move(game_id, "bob", "e7e1", 1)
        turn = await other_api.move(game_id, "alice", dance(1), 1)

        assert (stale.status, stale.code) == (409, "stale_ply")
        assert (illegal.status, illegal.code) == (422, "illegal_move")
        assert (turn.status, turn.code) == (409, "not_your_turn")
        assert (await api.game(game_id))["ply"] == 1


async def test_the_internal_route_refuses_tokens_without_the_node_role(
    api: Api,
) -> None:
    game_id = await api.create_game()
    body = {"message": {"kind": "GetGame", "fields": {}}}

    as_player = await api.request(
        "POST", f"/internal/games/{game_id}/ask", user="alice", body=body
    )
    as_node = await api.request(
        "POST",
        f"/internal/games/{game_id}/ask",
        body=body,
        headers={"Authorization": f"Bearer {token('node:x', 'node')}"},
    )
    odd = await api.request(
        "POST",
        f"/internal/games/{game_id}/ask",
        body={"message": {"kind": "Subscribe", "fields": {}}},
        headers={"Authorization": f"Bearer {token('node:x', 'node')}"},
    )

    assert as_player.status == 403
    assert as_node.status == 200
    assert as_node.body["kind"] == "GameView"
    assert odd.status == 400


@pytest.mark.slow
async def test_a_dead_nodes_games_move_to_a_survivor_with_nothing_lost(
    node_env: dict[str, str],
    spawn_node: Callable[[dict[str, str]], NodeProcess],
    postgres: asyncpg.Pool,
) -> None:
    doomed_env = second_node(node_env)
    doomed = spawn_node(doomed_env)
    async with api_client(doomed.http) as doomed_api:
        await doomed.wait_ready(doomed_api)
        game_id = await doomed_api.create_game(clock={"initial": 600, "increment": 0})
        await doomed_api.play(game_id, [dance(i) for i in range(4)])

    doomed.kill()

    async with (
        open_node(Settings.from_env(node_env)) as survivor,
        api_client(http_base(survivor.settings)) as api,
    ):
        # The survivor adopts the game once the dead node's lease expires.
        await eventually(lambda: survivor.service.games.local(game_id) is not None, 20)
        ply = await api.play(game_id, [dance(4), dance(5)], first_ply=4)
        epoch = await postgres.fetchval(
            "SELECT epoch FROM games WHERE id = $1", game_id
        )
        plies = await postgres.fetch(
            "SELECT ply FROM game_moves WHERE game_id = $1 ORDER BY ply", game_id
        )

        assert ply == 6
        assert [row["ply"] for row in plies] == [1, 2, 3, 4, 5, 6]
        assert epoch >= 2
