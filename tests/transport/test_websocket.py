"""The WebSocket edge over real sockets on the loopback, against a fake node."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import orjson
import pytest
from transport_fakes import RecordingObserver, running_websocket, token_for
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from livegame.actors.game.messages import PlayMove, Resign
from livegame.transport import RateLimit, WebSocketConfig

pytestmark = pytest.mark.anyio

DEADLINE = 5


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def ws_config() -> WebSocketConfig:
    return WebSocketConfig(max_frame_bytes=1024, outbound_capacity=16)


@pytest.fixture
async def url(games, ws_config, observer) -> AsyncIterator[str]:
    async with running_websocket(games, ws_config, observer) as endpoint:
        yield endpoint


def as_user(url: str, user: str) -> str:
    return f"{url}?token={token_for(user)}"


async def send(ws: ClientConnection, frame: dict) -> None:
    await ws.send(orjson.dumps(frame).decode())


async def recv(ws: ClientConnection) -> dict:
    with anyio.fail_after(DEADLINE):
        return orjson.loads(await ws.recv())


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; return its close code."""
    with anyio.fail_after(DEADLINE):
        try:
            while True:
                await ws.recv()
        except ConnectionClosedError as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def frames_until(ws: ClientConnection, last) -> list[dict]:
    """Receive frames up to and including the first for which ``last`` is true."""
    frames = [await recv(ws)]
    while not last(frames[-1]):
        frames.append(await recv(ws))
    return frames


async def play(ws: ClientConnection, game: str, uci: str, ply: int, rid: str) -> dict:
    await send(ws, {"type": "move", "game": game, "uci": uci, "ply": ply, "rid": rid})
    return await recv(ws)


# Handshake.


async def test_a_handshake_without_a_token_is_refused_with_401(url):
    with pytest.raises(InvalidStatus) as refused:
        await connect(url)

    response = refused.value.response
    assert response.status_code == 401
    assert orjson.loads(response.body)["error"]["code"] == "unauthorized"


async def test_a_handshake_with_a_bad_token_is_refused_with_401(url):
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{url}?token=forged")

    assert refused.value.response.status_code == 401


async def test_the_authorization_header_works_for_the_handshake(url):
    headers = {"Authorization": f"Bearer {token_for('alice')}"}
    async with connect(url, additional_headers=headers) as ws:
        await send(ws, {"type": "ping", "rid": "p1"})

        assert await recv(ws) == {"type": "pong", "rid": "p1"}


async def test_a_handshake_on_another_path_is_404(url):
    with pytest.raises(InvalidStatus) as refused:
        await connect(url.replace("/ws", "/elsewhere") + f"?token={token_for('a')}")

    assert refused.value.response.status_code == 404


async def test_connections_over_the_limit_are_refused_with_503(games, observer):
    config = WebSocketConfig(max_connections=1)
    async with (
        running_websocket(games, config, observer) as url,
        connect(as_user(url, "alice")) as first,
    ):
        await send(first, {"type": "ping"})
        await recv(first)
        with pytest.raises(InvalidStatus) as refused:
            await connect(as_user(url, "bob"))

    assert refused.value.response.status_code == 503
    assert refused.value.response.headers["Retry-After"] == "1"


async def test_one_user_has_a_bounded_number_of_connections(games, observer):
    config = WebSocketConfig(max_connections_per_user=2)
    async with running_websocket(games, config, observer) as url:
        first = await connect(as_user(url, "alice"))
        second = await connect(as_user(url, "alice"))
        with pytest.raises(InvalidStatus) as refused:
            await connect(as_user(url, "alice"))
        async with connect(as_user(url, "bob")) as other:
            await send(other, {"type": "ping", "rid": "p"})
            assert await recv(other) == {"type": "pong", "rid": "p"}
        # A service (a relay of spectators, a bot host) is not limited.
        service = f"{url}?token={token_for('relay', 'service')}"
        services = [await connect(service) for _ in range(3)]

        # Once one of hers has closed, alice may open another.
        await first.close()
        with anyio.fail_after(DEADLINE):
            while True:
                try:
                    third = await connect(as_user(url, "alice"))
                    break
                except InvalidStatus:
                    await anyio.sleep(0.02)
        for ws in (second, third, *services):
            await ws.close()

    response = refused.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert orjson.loads(response.body)["error"]["code"] == "too_many_connections"


async def test_a_browser_on_another_origin_is_refused_when_origins_are_set(
    games, observer
):
    config = WebSocketConfig(allowed_origins=frozenset({"https://chess.example.com"}))
    async with running_websocket(games, config, observer) as url:
        with pytest.raises(InvalidStatus) as refused:
            await connect(as_user(url, "alice"), origin="https://evil.example")
        async with (
            connect(as_user(url, "alice"), origin="https://chess.example.com") as page,
            connect(as_user(url, "bob")) as program,
        ):
            for ws in (page, program):
                await send(ws, {"type": "ping", "rid": "p"})
                assert await recv(ws) == {"type": "pong", "rid": "p"}

    assert refused.value.response.status_code == 403
    error = orjson.loads(refused.value.response.body)["error"]
    assert error["code"] == "origin_not_allowed"


# Subscribing and resuming.


async def test_a_subscriber_gets_the_state_then_the_moves_it_missed(url, games):
    game = games.new_game()
    async with connect(as_user(url, "alice")) as alice:
        for ply, uci in enumerate(["e2e4", "e7e5", "g1f3"]):
            player = "alice" if ply % 2 == 0 else "bob"
            await games.ask(game.id, _move(player, uci, ply), 1)

        await send(
            alice, {"type": "subscribe", "game": game.id, "since": 1, "rid": "s"}
        )
        state = await recv(alice)
        missed = [await recv(alice), await recv(alice)]

    assert state["type"] == "state"
    assert state["rid"] == "s"
    assert state["game"]["ply"] == 3
    assert [(m["type"], m["ply"], m["uci"]) for m in missed] == [
        ("move", 2, "e7e5"),
        ("move", 3, "g1f3"),
    ]


async def test_a_subscribe_without_since_sends_only_the_state(url, games):
    game = games.new_game()
    await games.ask(game.id, _move("alice", "e2e4", 0), 1)
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id})
        state = await recv(carol)
        await send(carol, {"type": "ping"})
        after = await recv(carol)

    assert state["game"]["moves"] == ["e2e4"]
    assert after["type"] == "pong"


async def test_subscribing_to_an_unknown_game_is_an_error(url):
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": "g404", "rid": "s1"})
        error = await recv(carol)

    assert error == {
        "type": "error",
        "rid": "s1",
        "error": {"code": "game_not_found", "message": "no game g404"},
    }


async def test_every_watcher_gets_every_move_and_the_end_in_ply_order(url, games):
    game = games.new_game()
    async with (
        connect(as_user(url, "alice")) as alice,
        connect(as_user(url, "bob")) as bob,
        connect(as_user(url, "carol")) as carol,
    ):
        for ws in (alice, bob, carol):
            await send(ws, {"type": "subscribe", "game": game.id, "since": 0})
            assert (await recv(ws))["type"] == "state"

        frames: dict[ClientConnection, list[dict]] = {alice: [], bob: [], carol: []}
        mate = [("f2f3", alice), ("e7e5", bob), ("g2g4", alice), ("d8h4", bob)]
        for ply, (uci, ws) in enumerate(mate):
            await send(ws, {"type": "move", "game": game.id, "uci": uci, "ply": ply})
            frames[ws].extend(await frames_until(ws, lambda f: f["type"] == "ack"))

        seen = {}
        for name, ws in (("alice", alice), ("bob", bob), ("carol", carol)):
            if not any(f["type"] == "end" for f in frames[ws]):
                frames[ws] += await frames_until(ws, lambda f: f["type"] == "end")
            events = [f for f in frames[ws] if f["type"] != "ack"]
            seen[name] = [(f["type"], f["ply"]) for f in events]

    expected = [("move", 1), ("move", 2), ("move", 3), ("move", 4), ("end", 4)]
    assert seen == {"alice": expected, "bob": expected, "carol": expected}


async def test_a_resubscribe_from_the_last_ply_seen_catches_up(url, games, observer):
    game = games.new_game()
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id, "since": 0})
        await recv(carol)

    await games.ask(game.id, _move("alice", "d2d4", 0), 1)
    await games.ask(game.id, _move("bob", "d7d5", 1), 1)
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id, "since": 0})
        frames = [await recv(carol) for _ in range(3)]

    assert [f.get("ply") for f in frames[1:]] == [1, 2]
    assert observer.resumed == 2


async def test_a_closed_connection_unsubscribes_from_its_games(url, games, observer):
    game = games.new_game()
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id})
        await recv(carol)
        assert len(game.subscribers) == 1

    with anyio.fail_after(DEADLINE):
        await observer.closed.wait()

    assert game.subscribers == []
    assert observer.closed_codes == [1000]


async def test_an_unsubscribe_is_acked_and_stops_the_events(url, games):
    game = games.new_game()
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id})
        await recv(carol)
        await send(carol, {"type": "unsubscribe", "game": game.id, "rid": "u1"})
        ack = await recv(carol)
        again = {"type": "unsubscribe", "game": game.id, "rid": "u2"}
        await send(carol, again)
        second = await recv(carol)
        await games.ask(game.id, _move("alice", "e2e4", 0), 1)
        await send(carol, {"type": "ping", "rid": "p"})
        after = await recv(carol)

    assert ack == {
        "type": "ack",
        "rid": "u1",
        "game": game.id,
        "result": {"unsubscribed": True},
    }
    assert second["result"] == {"unsubscribed": False}
    assert game.subscribers == []
    assert after == {"type": "pong", "rid": "p"}


async def test_a_game_that_ends_releases_its_watchers_and_their_slots(games):
    config = WebSocketConfig(max_subscriptions=1)
    async with running_websocket(games, config, RecordingObserver()) as url:
        game, next_game = games.new_game(), games.new_game()
        async with connect(as_user(url, "carol")) as carol:
            await send(carol, {"type": "subscribe", "game": game.id})
            await recv(carol)
            await games.ask(game.id, Resign("alice"), 1)
            end = await recv(carol)
            with anyio.fail_after(DEADLINE):
                while game.subscribers:
                    await anyio.sleep(0.01)
            await send(carol, {"type": "subscribe", "game": next_game.id})
            state = await recv(carol)

    assert end["type"] == "end"
    assert state["type"] == "state"
    assert state["game"]["id"] == next_game.id


# Moves and actions.


async def test_a_move_is_acked_with_its_rid_and_result(url, games):
    game = games.new_game()
    async with connect(as_user(url, "alice")) as alice:
        ack = await play(alice, game.id, "e2e4", 0, "m1")

    assert ack["type"] == "ack"
    assert ack["rid"] == "m1"
    assert ack["game"] == game.id
    assert (ack["result"]["ply"], ack["result"]["san"]) == (1, "e4")


@pytest.mark.parametrize(
    ("user", "uci", "ply", "code"),
    [
        ("bob", "e7e5", 0, "not_your_turn"),
        ("alice", "e2e4", 3, "stale_ply"),
        ("alice", "e2e5", 0, "illegal_move"),
        ("alice", "castle", 0, "illegal_move"),
        ("carol", "e2e4", 0, "not_a_player"),
    ],
)
async def test_a_refused_move_is_an_error_and_changes_nothing(
    url, games, observer, user, uci, ply, code
):
    game = games.new_game()
    before = game.view()
    async with connect(as_user(url, user)) as ws:
        error = await play(ws, game.id, uci, ply, "m1")

    assert error["type"] == "error"
    assert error["rid"] == "m1"
    assert error["error"]["code"] == code
    assert game.view() == before
    assert observer.rejected == [code]


async def test_a_move_in_an_unknown_game_is_an_error(url):
    async with connect(as_user(url, "alice")) as alice:
        error = await play(alice, "g404", "e2e4", 0, "m1")

    assert error["error"]["code"] == "game_not_found"


@pytest.mark.parametrize(
    ("action", "status"),
    [("resign", "resign"), ("abort", "aborted")],
)
async def test_a_game_action_is_acked_with_the_game(url, games, action, status):
    game = games.new_game()
    async with connect(as_user(url, "bob")) as bob:
        await send(bob, {"type": action, "game": game.id, "rid": "a1"})
        ack = await recv(bob)

    assert (ack["type"], ack["rid"]) == ("ack", "a1")
    assert ack["result"]["status"] == status


async def test_a_draw_offer_reaches_the_watchers(url, games):
    game = games.new_game()
    async with (
        connect(as_user(url, "alice")) as alice,
        connect(as_user(url, "bob")) as bob,
    ):
        await send(bob, {"type": "subscribe", "game": game.id})
        await recv(bob)
        await send(alice, {"type": "draw_offer", "game": game.id, "rid": "d1"})
        ack = await recv(alice)
        offer = await recv(bob)
        await send(bob, {"type": "draw_decline", "game": game.id, "rid": "d2"})
        frames = [await recv(bob), await recv(bob)]

    assert ack["result"]["draw_offer"] == "white"
    assert (offer["type"], offer["by"]) == ("draw_offer", "white")
    assert sorted(f["type"] for f in frames) == ["ack", "draw_decline"]


async def test_an_overloaded_node_is_an_error_frame(url, games):
    game = games.new_game()
    async with connect(as_user(url, "alice")) as alice:
        await play(alice, game.id, "e2e4", 0, "m0")
        games.overloaded = True
        error = await play(alice, game.id, "e7e5", 1, "m1")

    assert error["error"]["code"] == "overloaded"


# Bad input and abuse.


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{oops", "malformed_json"),
        ('{"type": "warp"}', "unknown_type"),
        ('{"type": "subscribe"}', "invalid_field"),
    ],
)
async def test_garbage_gets_an_error_and_the_connection_lives_on(url, raw, code):
    async with connect(as_user(url, "alice")) as alice:
        await alice.send(raw)
        error = await recv(alice)
        await send(alice, {"type": "ping"})
        pong = await recv(alice)

    assert error["error"]["code"] == code
    assert pong["type"] == "pong"


async def test_a_binary_frame_gets_an_error(url):
    async with connect(as_user(url, "alice")) as alice:
        await alice.send(b'{"type": "ping"}')
        error = await recv(alice)

    assert error["error"]["code"] == "unsupported_frame"


async def test_an_oversized_frame_closes_with_1009(url, observer):
    async with connect(as_user(url, "alice")) as alice:
        await alice.send('{"type": "ping", "rid": "' + "x" * 2000 + '"}')
        code = await close_code(alice)

    assert code == 1009


async def test_a_flood_is_rate_limited_then_closed_with_1008(games, observer):
    config = WebSocketConfig(connection_rate=RateLimit(0.001, 2), flood_strikes=2)
    async with (
        running_websocket(games, config, observer) as url,
        connect(as_user(url, "alice")) as alice,
    ):
        for n in range(6):
            await send(alice, {"type": "ping", "rid": str(n)})

        frames = [await recv(alice) for _ in range(4)]
        code = await close_code(alice)

    assert [(f["type"], f["rid"]) for f in frames] == [
        ("pong", "0"),
        ("pong", "1"),
        ("error", "2"),
        ("error", "3"),
    ]
    assert frames[2]["error"]["code"] == "rate_limited"
    assert code == 1008


async def test_a_slow_consumer_is_closed_with_4008_and_can_resume(url, games):
    game = games.new_game()
    await games.ask(game.id, _move("alice", "e2e4", 0), 1)
    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id, "since": 1})
        await recv(carol)

        # Carol reads no more. Frames go straight to the socket until its
        # buffers fill; then they wait in the outbox (16 in this module), and
        # one more closes the connection, which leaves the game.
        with anyio.fail_after(DEADLINE):
            while game.subscribers:
                games.flood(game.id, 100)
                await anyio.lowlevel.checkpoint()
        code = await close_code(carol)

    async with connect(as_user(url, "carol")) as carol:
        await send(carol, {"type": "subscribe", "game": game.id, "since": 0})
        state = await recv(carol)
        missed = await recv(carol)

    assert code == 4008
    assert state["game"]["ply"] == 1
    assert (missed["type"], missed["ply"]) == ("move", 1)


async def test_closing_the_server_says_going_away(games, observer):
    game = games.new_game()
    async with running_websocket(games, WebSocketConfig(), observer) as url:
        ws = await connect(as_user(url, "carol"))
        await send(ws, {"type": "subscribe", "game": game.id})
        await recv(ws)

    with anyio.fail_after(DEADLINE), pytest.raises(ConnectionClosed) as closed:
        await ws.recv()

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert game.subscribers == []


def _move(player: str, uci: str, ply: int) -> PlayMove:
    return PlayMove(player, uci, ply)
