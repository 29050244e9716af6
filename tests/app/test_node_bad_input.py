"""Bad input through a whole node: a clear error each time, and nothing changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from node_helpers import (
    SCHOLARS_MATE,
    Api,
    Json,
    eventually,
    token,
    watching,
    ws_url,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from livegame.app.node import Node
from livegame.transport.auth import mint_token

pytestmark = pytest.mark.anyio

OTHER_SECRET = "a-secret-this-node-has-never-heard-of-0123456789"


@dataclass(frozen=True)
class Case:
    """One bad request to the game at ply 2 and the error it must get."""

    name: str
    status: int
    code: str
    user: str | None = "alice"
    body: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/moves"


HTTP_CASES = [
    Case("malformed JSON", 400, "malformed_json", data=b'{"uci": "f1c4",'),
    Case("JSON that is no object", 400, "malformed_json", body=["f1c4", 2]),
    Case("wrong types", 400, "invalid_field", body={"uci": 5, "ply": "2"}),
    Case("a missing field", 400, "invalid_field", body={"uci": "f1c4"}),
    Case(
        "an unknown field",
        400,
        "invalid_field",
        body={"uci": "f1c4", "ply": 2, "promote": True},
    ),
    Case("a negative ply", 400, "invalid_field", body={"uci": "f1c4", "ply": -1}),
    Case("fields in an action", 400, "invalid_field", body={"x": 1}, path="/resign"),
    Case("no token", 401, "unauthorized", user=None, body={"uci": "f1c4", "ply": 2}),
    Case(
        "a garbled token",
        401,
        "unauthorized",
        user=None,
        headers={"Authorization": "Bearer not.a.token"},
        body={"uci": "f1c4", "ply": 2},
    ),
    Case(
        "a token signed with another secret",
        401,
        "unauthorized",
        user=None,
        headers={"Authorization": f"Bearer {mint_token(OTHER_SECRET, 'alice')}"},
        body={"uci": "f1c4", "ply": 2},
    ),
    Case(
        "a move by a spectator",
        403,
        "not_a_player",
        user="mallory",
        body={"uci": "f1c4", "ply": 2},
    ),
    Case(
        "a resignation by a spectator",
        403,
        "not_a_player",
        user="mallory",
        path="/resign",
    ),
    Case("a stale ply", 409, "stale_ply", body={"uci": "f1c4", "ply": 1}),
    Case("a ply from the future", 409, "stale_ply", body={"uci": "f1c4", "ply": 3}),
    Case(
        "out of turn", 409, "not_your_turn", user="bob", body={"uci": "d7d5", "ply": 2}
    ),
    Case("an illegal move", 422, "illegal_move", body={"uci": "e1e3", "ply": 2}),
    Case("a move of no piece", 422, "illegal_move", body={"uci": "e3e4", "ply": 2}),
    Case("no UCI at all", 422, "illegal_move", body={"uci": "castle", "ply": 2}),
    Case("an oversized body", 413, "payload_too_large", data=b" " * 20_000),
]


async def game_at_ply_two(api: Api) -> str:
    game_id = await api.create_game("alice", "bob")
    await api.play(game_id, SCHOLARS_MATE[:2])

    return game_id


async def test_each_bad_http_request_gets_its_error_and_changes_nothing(
    api: Api,
) -> None:
    game_id = await game_at_ply_two(api)
    before = await api.game(game_id, "carol")

    for case in HTTP_CASES:
        reply = await api.request(
            "POST",
            f"/api/games/{game_id}{case.path}",
            user=case.user,
            body=case.body,
            data=case.data,
            headers=case.headers,
        )

        assert (reply.status, reply.code) == (case.status, case.code), case.name
        assert reply.body["error"]["message"], case.name
        assert await api.game(game_id, "carol") == before, case.name

    # The game still takes the right move from the right player.
    moved = await api.move(game_id, "alice", "f1c4", 2)
    assert (moved.status, moved.body["ply"]) == (200, 3)


async def test_an_unknown_game_is_404_on_every_route(api: Api) -> None:
    for method, path in [
        ("GET", ""),
        ("GET", "/board"),
        ("GET", "/moves"),
        ("POST", "/moves"),
        ("POST", "/resign"),
        ("POST", "/draw/offer"),
    ]:
        body = {"uci": "e2e4", "ply": 0} if path == "/moves" else None
        reply = await api.request(
            method, f"/api/games/NoSuchGame{path}", user="alice", body=body
        )

        assert (reply.status, reply.code) == (404, "game_not_found"), (method, path)


async def test_moves_and_actions_after_the_end_are_refused_and_change_nothing(
    api: Api,
) -> None:
    game_id = await api.create_game("alice", "bob")
    await api.play(game_id, SCHOLARS_MATE)
    before = await api.game(game_id, "carol")

    refused = [
        await api.move(game_id, "bob", "e8f7", 7),
        await api.move(game_id, "bob", "a7a6", 7),
        await api.request("POST", f"/api/games/{game_id}/resign", user="bob"),
        await api.request("POST", f"/api/games/{game_id}/draw/offer", user="alice"),
    ]

    assert [(r.status, r.code) for r in refused] == [(409, "game_over")] * 4
    assert await api.game(game_id, "carol") == before


async def test_a_retried_move_gets_its_original_result_and_is_played_once(
    api: Api,
) -> None:
    game_id = await api.create_game("alice", "bob")
    first = await api.move(game_id, "alice", "e2e4", 0)
    again = await api.move(game_id, "alice", "e2e4", 0)

    assert (first.status, again.status) == (200, 200)
    assert again.body == first.body
    assert (await api.game(game_id, "carol"))["moves"] == ["e2e4"]


async def test_a_user_over_the_rate_limit_gets_429_with_retry_after(
    api: Api,
) -> None:
    game_id = await game_at_ply_two(api)
    before = await api.game(game_id, "carol")

    # USER_RATE is 20 a second with a burst of 40: sixty at once overflow it.
    replies = [await api.move(game_id, "alice", "f1c4", 0) for _ in range(60)]

    limited = [r for r in replies if r.status == 429]
    assert limited, [r.status for r in replies]
    assert {r.code for r in limited} == {"rate_limited"}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert {r.status for r in replies} == {409, 429}
    assert await api.game(game_id, "bob") == before


async def test_each_bad_frame_gets_its_error_and_the_connection_lives_on(
    node: Node, api: Api
) -> None:
    game_id = await game_at_ply_two(api)
    before = await api.game(game_id, "carol")
    move = {"type": "move", "game": game_id}
    frames: list[tuple[str, Json, str]] = [
        ("no type", {"game": game_id}, "invalid_field"),
        ("an unknown type", {"type": "teleport"}, "unknown_type"),
        ("wrong types", {**move, "uci": 5, "ply": "2"}, "invalid_field"),
        ("an unknown field", {"type": "ping", "extra": 1}, "invalid_field"),
        ("a bad game id", {"type": "subscribe", "game": "../x"}, "invalid_field"),
        ("an unknown game", {"type": "subscribe", "game": "NoSuch"}, "game_not_found"),
        ("a stale ply", {**move, "uci": "f1c4", "ply": 0}, "stale_ply"),
        ("out of turn", {**move, "uci": "d7d5", "ply": 2}, "not_your_turn"),
        ("an illegal move", {**move, "uci": "e1e3", "ply": 2}, "illegal_move"),
    ]
    url = ws_url(node.settings)

    async with watching(url, "alice") as alice, watching(url, "bob") as bob:
        raw_frames: list[tuple[str | bytes, str]] = [
            ("not JSON", "malformed_json"),
            (b"{}", "unsupported_frame"),
        ]
        for raw, code in raw_frames:
            error = await alice.send_raw(raw)
            assert (error["type"], error["error"]["code"]) == ("error", code), raw

        for name, frame, code in frames:
            sender = bob if name == "out of turn" else alice
            reply = await sender.request(frame)
            assert (reply["type"], reply["error"]["code"]) == ("error", code), name

        async with watching(url, "mallory") as mallory:
            resign = await mallory.request({"type": "resign", "game": game_id})
            assert resign["error"]["code"] == "not_a_player"

        assert await api.game(game_id, "carol") == before
        assert (await alice.request({"type": "ping"}))["type"] == "pong"
        assert (await alice.move(game_id, "f1c4", 2))["type"] == "ack"


async def test_an_oversized_frame_closes_the_connection_with_1009(
    node: Node, api: Api
) -> None:
    game_id = await game_at_ply_two(api)
    before = await api.game(game_id, "carol")

    async with watching(ws_url(node.settings), "alice") as alice:
        await alice.send(
            {
                "type": "move",
                "game": game_id,
                "uci": "f1c4",
                "ply": 2,
                "rid": "x" * 20_000,
            }
        )
        assert await alice.wait_closed() == 1009

    assert await api.game(game_id, "carol") == before


@pytest.mark.slow
async def test_a_flood_is_refused_then_closed_with_1008(node: Node, api: Api) -> None:
    game_id = await game_at_ply_two(api)
    before = await api.game(game_id, "carol")

    async with watching(ws_url(node.settings), "alice") as alice:
        for _ in range(200):
            if alice.close_code is not None:
                break
            await alice.send({"type": "move", "game": game_id, "uci": "e1e3", "ply": 2})
        code = await alice.wait_closed()

    assert code == 1008
    errors = [f["error"]["code"] for f in alice.frames if f["type"] == "error"]
    assert "rate_limited" in errors
    assert set(errors) <= {"rate_limited", "illegal_move"}
    assert await api.game(game_id, "carol") == before


@pytest.mark.slow
async def test_the_node_counts_a_flood_close_as_1008_without_waiting(
    node: Node, api: Api
) -> None:
    before = await closes_counted(api, "1008")

    async with watching(ws_url(node.settings), "alice") as alice:
        for _ in range(200):
            await alice.send({"type": "ping"})
        await alice.wait_closed()

    # Well within the five seconds of the server's close timeout.
    await eventually(lambda: closes_counted_above(api, "1008", before), timeout=2)


async def closes_counted(api: Api, code: str) -> float:
    async with api.session.get(f"{api.base}/metrics") as response:
        text = await response.text()
    prefix = f'live_game_websocket_closes_total{{code="{code}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def closes_counted_above(api: Api, code: str, count: float) -> bool:
    return await closes_counted(api, code) > count


@pytest.mark.parametrize(
    "query", ["", "?token=garbage", f"?token={mint_token(OTHER_SECRET, 'alice')}"]
)
async def test_a_websocket_without_a_valid_token_is_refused_with_401(
    node: Node, query: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(node.settings) + query, open_timeout=5):
            pass

    assert refused.value.response.status_code == 401
    assert b"unauthorized" in refused.value.response.body


async def test_a_websocket_token_opens_the_connection(node: Node) -> None:
    async with connect(f"{ws_url(node.settings)}?token={token('alice')}") as socket:
        await socket.send('{"type": "ping", "rid": "p"}')
        assert '"pong"' in str(await socket.recv())
