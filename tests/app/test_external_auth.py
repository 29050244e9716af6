"""A node whose players' tokens come from an external auth service (``AUTH_URL``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from node_helpers import http_base, token, watching
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from auth_stub import AuthStub, auth_stub
from livegame.app.config import Settings
from livegame.app.node import Node, open_node
from livegame.telemetry import metrics

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
async def stub() -> AsyncIterator[AuthStub]:
    async with auth_stub() as started:
        yield started


@pytest.fixture
async def node(node_env: dict[str, str], stub: AuthStub) -> AsyncIterator[Node]:
    node_env["AUTH_URL"] = stub.url
    node_env["AUTH_CLIENT_TOKEN"] = "node-credential"
    node_env["AUTH_TIMEOUT_SECONDS"] = "0.5"
    async with open_node(Settings.from_env(node_env)) as started:
        yield started


@pytest.fixture
async def call(node: Node) -> AsyncIterator[Any]:
    """``call(method, path, bearer, body)``: the status, headers and JSON body."""
    base = http_base(node.settings)
    async with aiohttp.ClientSession() as http:

        async def request(
            method: str, path: str, bearer: str, body: Any = None
        ) -> tuple[int, Any, Any]:
            headers = {"Authorization": f"Bearer {bearer}"}
            async with http.request(
                method, base + path, json=body, headers=headers
            ) as reply:
                return reply.status, reply.headers, await reply.json()

        yield request


def auth_calls(status: str) -> float:
    labels = {"service": "auth-api", "status": status}
    value = metrics.REGISTRY.get_sample_value("external_service_calls_total", labels)
    return value or 0.0


NEW_GAME = {"white": "alice", "black": "bob"}


async def test_players_of_the_auth_service_play_over_http_and_websocket(
    node: Node, stub: AuthStub, call: Any
) -> None:
    alice = stub.know("opaque-alice", "alice")
    bob = stub.know("opaque-bob", "bob")

    status, _, game = await call("POST", "/api/games", alice, NEW_GAME)
    assert status == 201, game
    moves = f"/api/games/{game['id']}/moves"
    status, _, moved = await call("POST", moves, alice, {"uci": "e2e4", "ply": 0})
    assert status == 200, moved

    ws_url = f"ws://127.0.0.1:{node.settings.ws_port}/ws"
    async with watching(ws_url, "bob", bearer=bob) as black:
        await black.subscribe(game["id"])
        ack = await black.move(game["id"], "e7e5", 1)
        assert ack["type"] == "ack", ack
        assert ack["result"]["ply"] == 2

    # Bob may not move for alice, whoever vouches for him.
    status, _, _ = await call("POST", moves, bob, {"uci": "g1f3", "ply": 2})
    assert status == 409

    # Our own admin token needs no call to the service.
    asked = len(stub.calls)
    status, _, _ = await call("GET", "/admin/cluster", token("root", "admin"))
    assert status == 200
    assert len(stub.calls) == asked

    assert {caller for _, caller in stub.calls} == {"Bearer node-credential"}
    # One call per token: the rest came from the cache.
    assert sorted(asked for asked, _ in stub.calls) == [alice, bob]


async def test_an_unknown_token_is_401_and_a_failing_service_503(
    node: Node, stub: AuthStub, call: Any
) -> None:
    alice = stub.know("opaque-alice", "alice")

    status, _, body = await call("GET", "/api/games/nosuchgame01", "opaque-mallory")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    # Alice is known before the service fails; her answer is cached.
    status, _, _ = await call("POST", "/api/games", alice, NEW_GAME)
    assert status == 201

    stub.fail_with = 502
    failures = auth_calls("error")
    carol_game = {"white": "carol", "black": "bob"}
    status, headers, body = await call("POST", "/api/games", "opaque-carol", carol_game)
    assert (status, body["error"]["code"]) == (503, "auth_unavailable")
    assert headers["Retry-After"]
    assert auth_calls("error") == failures + 1

    ws_url = f"ws://127.0.0.1:{node.settings.ws_port}/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws_url}?token=opaque-carol", open_timeout=5):
            pass
    assert refused.value.response.status_code == 503

    status, _, _ = await call("POST", "/api/games", alice, NEW_GAME)
    assert status == 201
