"""A whole node against PostgreSQL, Redis and Kafka: games end to end."""

from __future__ import annotations

import io
import secrets

import anyio
import asyncpg
import chess.pgn
import pytest
from node_helpers import (
    SCHOLARS_MATE,
    Api,
    Json,
    dance,
    kafka_events,
    mover,
    token,
    watching,
    ws_url,
)

from livegame.app.node import Node

pytestmark = pytest.mark.anyio


async def test_a_game_played_to_mate_over_websocket_reaches_every_watcher_and_kafka(
    node: Node,
    api: Api,
    postgres: asyncpg.Pool,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> None:
    game_id = await api.create_game("alice", "bob")
    url = ws_url(node.settings)

    async with (
        kafka_events(kafka_bootstrap, kafka_topic) as kafka,
        watching(url, "alice") as white,
        watching(url, "bob") as black,
        watching(url, "carol") as spectator,
    ):
        for watcher in (white, black, spectator):
            state = await watcher.subscribe(game_id)
            assert (state["game"]["ply"], state["game"]["status"]) == (0, "started")

        acks = []
        for ply, uci in enumerate(SCHOLARS_MATE):
            player = white if mover(ply) == "alice" else black
            ack = await player.move(game_id, uci, ply)
            assert ack["type"] == "ack", ack
            acks.append(ack["result"])

        expected = [("move", ply) for ply in range(1, 8)] + [("end", 7)]
        for watcher in (white, black, spectator):
            await watcher.wait_for(lambda f: f["type"] == "end")
            assert watcher.pushed(game_id) == expected
            assert [f["uci"] for f in watcher.moves(game_id)] == SCHOLARS_MATE

        moves = await kafka.wait_for_plies(game_id, 7)
        events = await kafka.wait_for_end(game_id)

    assert [a["ply"] for a in acks] == list(range(1, 8))
    assert [a["uci"] for a in acks] == SCHOLARS_MATE
    assert acks[-1]["san"] == "Qxf7#"
    assert (acks[-1]["status"], acks[-1]["winner"]) == ("mate", "white")
    assert all(a["status"] == "started" for a in acks[:-1])

    assert [m["ply"] for m in moves] == list(range(1, 8))
    assert [m["move"]["uci"] for m in moves] == SCHOLARS_MATE
    assert [e["type"] for e in events] == ["game_created"] + ["move_played"] * 7 + [
        "game_ended"
    ]
    assert len({e["event_id"] for e in events}) == len(events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert (events[-1]["status"], events[-1]["winner"]) == ("mate", "white")
    assert {e["event_id"] for e in events} == await outbox_event_ids(postgres, game_id)

    # The same game, read over HTTP.
    game = await routes_agree_on_mate(api, game_id)
    assert game["fen"] == white.moves(game_id)[-1]["fen"] == events[-2]["move"]["fen"]


async def test_a_game_played_over_http_reads_the_same_through_every_route(
    api: Api,
) -> None:
    game_id = await api.create_game(
        "alice", "bob", clock={"initial": 60, "increment": 1}
    )

    assert await api.play(game_id, SCHOLARS_MATE) == 7

    game = await routes_agree_on_mate(api, game_id)
    assert game["clock"]["increment_ms"] == 1000

    pgn = await api.request("GET", f"/api/games/{game_id}/pgn", user="carol")
    assert pgn.status == 200
    assert pgn.headers["Content-Type"].startswith("application/x-chess-pgn")
    record = chess.pgn.read_game(io.StringIO(pgn.body))
    assert record is not None
    assert record.errors == []
    assert [move.uci() for move in record.mainline_moves()] == SCHOLARS_MATE
    tags = dict(record.headers)
    assert (tags["White"], tags["Black"], tags["Result"]) == ("alice", "bob", "1-0")
    assert (tags["TimeControl"], tags["GameId"]) == ("60+1", game_id)
    clocks = [node.clock() for node in record.mainline()]
    assert clocks[0] == 60.0
    # Sixty seconds and one more for each move: a fast game only gains.
    assert all(left is not None and 59 < left <= 64 for left in clocks)


async def routes_agree_on_mate(api: Api, game_id: str) -> Json:
    """Check that the game, board and moves routes tell the same mate."""
    game = await api.game(game_id, "carol")
    board = await api.request("GET", f"/api/games/{game_id}/board", user="carol")
    moves = await api.request("GET", f"/api/games/{game_id}/moves", user="carol")
    assert (board.status, moves.status) == (200, 200)
    assert game["moves"] == SCHOLARS_MATE
    assert (game["ply"], game["status"], game["winner"]) == (7, "mate", "white")
    listed = moves.body["moves"]
    assert [m["ply"] for m in listed] == list(range(1, 8))
    assert [m["uci"] for m in listed] == SCHOLARS_MATE
    assert listed[-1]["san"] == "Qxf7#"
    assert listed[-1]["fen"] == game["fen"]
    seen = {k: board.body[k] for k in ("fen", "ply", "turn", "status", "winner")}
    assert seen == {k: game[k] for k in seen}
    assert board.body["clock"] == game["clock"]

    return game


async def outbox_event_ids(postgres: asyncpg.Pool, game_id: str) -> set[str]:
    rows = await postgres.fetch(
        "SELECT event_id FROM outbox WHERE game_id = $1", game_id
    )
    return {row["event_id"] for row in rows}


async def test_a_killed_game_actor_is_restored_and_the_game_goes_on(
    node: Node,
    api: Api,
    postgres: asyncpg.Pool,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> None:
    game_id = await api.create_game("alice", "bob")
    path = f"/admin/actors/user/games/{game_id}"
    admin = {"Authorization": f"Bearer {token('root', 'admin')}"}

    async with (
        kafka_events(kafka_bootstrap, kafka_topic) as kafka,
        watching(ws_url(node.settings), "carol") as spectator,
    ):
        await spectator.subscribe(game_id)
        ply = await api.play(game_id, [dance(p) for p in range(6)])

        # A move races the kill: whatever it got, its retry gets the result.
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(api.move, game_id, mover(ply), dance(ply), ply)
            killed = await api.request("POST", f"{path}/kill", headers=admin)
        assert killed.status == 200, killed
        assert killed.body == {"path": f"/user/games/{game_id}", "killed": True}
        retried = await api.move(game_id, mover(ply), dance(ply), ply)
        assert (retried.status, retried.body["ply"]) == (200, ply + 1), retried

        # The supervisor restarted it from the journal; moves go on.
        ply = await api.play(game_id, [dance(p) for p in range(ply + 1, 12)], ply + 1)
        actor = await api.request("GET", path, headers=admin)

        await kafka.wait_for_plies(game_id, 12)
        await spectator.wait_for(lambda f: f["type"] == "move" and f["ply"] == 12)

    assert actor.status == 200, actor
    assert actor.body["restarts"] == 1
    assert (await api.game(game_id))["ply"] == 12
    assert await plies_in_postgres(postgres, game_id) == list(range(1, 13))
    assert [m["ply"] for m in kafka.moves(game_id)] == list(range(1, 13))
    assert spectator.pushed(game_id) == [("move", p) for p in range(1, 13)]


async def plies_in_postgres(postgres: asyncpg.Pool, game_id: str) -> list[int]:
    rows = await postgres.fetch(
        "SELECT ply FROM game_moves WHERE game_id = $1 ORDER BY ply", game_id
    )
    return [row["ply"] for row in rows]


async def test_a_players_games_are_listed_from_postgres_newest_first(
    api: Api,
) -> None:
    player = f"p{secrets.token_hex(4)}"
    first = await api.create_game(player, "bob")
    second = await api.create_game(
        "carol", player, clock={"initial": 60, "increment": 0}
    )
    reply = await api.request(
        "POST", f"/api/games/{first}/moves", user=player, body={"uci": "e2e4", "ply": 0}
    )
    assert reply.status == 200
    reply = await api.request("POST", f"/api/games/{second}/resign", user="carol")
    assert reply.status == 200

    listed = await api.request("GET", f"/api/games?player={player}", user="dave")
    live = await api.request("GET", "/api/games?status=started", user=player)

    assert listed.status == 200
    assert [g["id"] for g in listed.body["games"]] == [second, first]
    newest, oldest = listed.body["games"]
    assert (newest["status"], newest["winner"]) == ("resign", "black")
    assert newest["clock"]["white_ms"] == 60_000
    assert (oldest["ply"], oldest["turn"], oldest["clock"]) == (1, "black", None)
    assert [g["id"] for g in live.body["games"]] == [first]
