"""Games as PGN: what chess programs read back."""

from __future__ import annotations

import io
from typing import Any

import chess.pgn
import pytest
from transport_fakes import bearer

from livegame.actors.game.rules import GameState, create_game
from livegame.transport.pgn import game_pgn

pytestmark = pytest.mark.anyio

ALICE, BOB = bearer("alice"), bearer("bob")
START_MS = 1_796_000_000_000  # 2026-11-30 00:53:20 UTC
FOOLS_MATE = ["f2f3", "e7e5", "g2g4", "d8h4"]


def played(ucis: list[str], clock: tuple[int, int] | None = (300_000, 2_000)) -> Any:
    initial_ms, increment_ms = clock if clock is not None else (None, 0)
    state = GameState(
        create_game("g1", "alice", "bob", initial_ms, increment_ms, START_MS)
    )
    for ply, uci in enumerate(ucis):
        mover = "alice" if ply % 2 == 0 else "bob"
        now = START_MS + (ply + 1) * 1500
        for event in state.play(mover, uci, ply, now):
            state.apply(event)

    return state


def read(text: str) -> chess.pgn.Game:
    record = chess.pgn.read_game(io.StringIO(text))
    assert record is not None
    assert record.errors == []
    return record


def test_a_mate_reads_back_with_its_result_tags_and_clocks() -> None:
    state = played(FOOLS_MATE)

    record = read(game_pgn(state.view(START_MS + 9000), state.moves, site="x"))

    assert [m.uci() for m in record.mainline_moves()] == FOOLS_MATE
    assert record.end().board().is_checkmate()
    tags = dict(record.headers)
    assert tags["Result"] == "0-1"
    assert (tags["White"], tags["Black"]) == ("alice", "bob")
    assert (tags["Date"], tags["UTCTime"]) == ("2026.11.30", "00:53:20")
    assert (tags["TimeControl"], tags["Termination"]) == ("300+2", "normal")
    assert (tags["Reason"], tags["GameId"], tags["Site"]) == ("checkmate", "g1", "x")
    clocks = [node.clock() for node in record.mainline()]
    expected = [(m.white_ms if m.ply % 2 else m.black_ms) / 1000 for m in state.moves]
    assert clocks == pytest.approx(expected, abs=1)


def test_a_game_without_a_clock_has_no_time_control_and_no_clocks() -> None:
    state = played(["e2e4", "e7e5"], clock=None)

    record = read(game_pgn(state.view(START_MS), state.moves))

    assert record.headers["TimeControl"] == "-"
    assert record.headers["Result"] == "*"
    assert record.headers["Termination"] == "unterminated"
    assert [node.clock() for node in record.mainline()] == [None, None]


def test_a_game_with_no_moves_is_a_valid_empty_game() -> None:
    state = played([])

    record = read(game_pgn(state.view(START_MS), state.moves))

    assert list(record.mainline_moves()) == []
    assert record.headers["Result"] == "*"


async def test_the_pgn_route_serves_the_game_to_any_user(client, games) -> None:
    game = games.new_game()
    for ply, uci in enumerate(FOOLS_MATE):
        who = ALICE if ply % 2 == 0 else BOB
        body = {"uci": uci, "ply": ply}
        await client.post(f"/api/games/{game.id}/moves", json=body, headers=who)

    response = await client.get(f"/api/games/{game.id}/pgn", headers=bearer("carol"))
    unknown = await client.get("/api/games/nosuch/pgn", headers=ALICE)
    anonymous = await client.get(f"/api/games/{game.id}/pgn")

    assert response.status == 200
    assert response.content_type == "application/x-chess-pgn"
    record = read(await response.text())
    assert [m.uci() for m in record.mainline_moves()] == FOOLS_MATE
    assert record.headers["Result"] == "0-1"
    assert record.headers["Site"].endswith(f"/api/games/{game.id}")
    assert (unknown.status, anonymous.status) == (404, 401)
