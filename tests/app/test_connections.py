"""Each WebSocket runs as an actor in the node's tree."""

from __future__ import annotations

import pytest
from node_helpers import Api, dance, eventually, token, watching, ws_url

from livegame.app.node import Node

pytestmark = pytest.mark.anyio

CONNECTIONS = "/user/connections"


def connection_paths(node: Node) -> list[str]:
    return [cell.path for cell in node.system.children(CONNECTIONS)]


async def test_an_open_socket_is_an_actor_under_connections(
    node: Node, api: Api
) -> None:
    game_id = await api.create_game()

    async with watching(ws_url(node.settings), "carol") as carol:
        await carol.subscribe(game_id)
        [path] = connection_paths(node)
        await api.play(game_id, [dance(0)])
        await carol.wait_for(lambda f: f["type"] == "move" and f["ply"] == 1)
        admin = {"Authorization": f"Bearer {token('root', 'admin')}"}
        row = await api.request("GET", f"/admin/actors{path}", headers=admin)

        assert row.status == 200
        assert row.body["kind"] == "ConnectionActor"
        assert row.body["processed"] >= 2  # the subscribe, then the move event

    await eventually(lambda: connection_paths(node) == [])


async def test_killing_a_connection_closes_its_socket_and_the_client_resumes(
    node: Node, api: Api
) -> None:
    game_id = await api.create_game()
    await api.play(game_id, [dance(0), dance(1)])

    async with watching(ws_url(node.settings), "carol") as carol:
        await carol.subscribe(game_id, since=0)
        [path] = connection_paths(node)
        node.system.kill(path)

        assert await carol.wait_closed() == 1011

    await api.play(game_id, [dance(2)], first_ply=2)
    async with watching(ws_url(node.settings), "carol") as again:
        await again.subscribe(game_id, since=2)
        await again.wait_for(lambda f: f["type"] == "move" and f["ply"] == 3)

        assert [ply for _, ply in again.pushed(game_id)] == [3]
