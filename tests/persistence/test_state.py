"""The pure checks the writer runs under the game's row lock."""

from __future__ import annotations

from dataclasses import replace

import pytest
from persistence_helpers import GameScript

from livegame.errors import Conflict, Fenced, GameOver
from livegame.persistence.state import OwnedBoard, check_append, initial_state


def owned(game: GameScript, epoch: int = 1) -> OwnedBoard:
    return OwnedBoard(initial_state(game.created()), epoch)


def test_a_new_game_starts_at_ply_zero_with_full_clocks() -> None:
    game = GameScript(initial_ms=60_000)

    state = initial_state(game.created())

    assert (state.ply, state.seq, state.status, state.turn) == (
        0,
        1,
        "started",
        "white",
    )
    assert (state.white_ms, state.black_ms) == (60_000, 60_000)


def test_an_append_advances_fen_ply_seq_and_clocks() -> None:
    game = GameScript()
    move = game.move("e2e4")

    after = check_append(owned(game), 1, [move])

    assert (after.state.ply, after.state.seq) == (1, 2)
    assert after.state.fen == move.fen
    assert after.state.turn == "black"


def test_a_newer_epoch_is_taken_over_and_an_older_one_fenced() -> None:
    game = GameScript()

    assert check_append(owned(game, 1), 3, [game.move("e2e4")]).epoch == 3
    with pytest.raises(Fenced):
        check_append(owned(game, 3), 2, [game.move("e7e5")])


def test_events_must_follow_each_other_without_gaps() -> None:
    game = GameScript()
    game.move("e2e4")

    with pytest.raises(Conflict, match="seq 3"):
        check_append(owned(game), 1, [game.move("e7e5")])


def test_a_draw_offer_is_pending_until_declined_or_a_move() -> None:
    game = GameScript()
    offered = check_append(owned(game), 1, [game.offer_draw("white")])
    declined = check_append(offered, 1, [game.decline_draw("black")])
    offered_again = check_append(declined, 1, [game.offer_draw("white")])
    moved = check_append(offered_again, 1, [game.move("e2e4")])

    assert offered.state.draw_offer == "white"
    assert declined.state.draw_offer is None
    assert moved.state.draw_offer is None


def test_the_end_sets_status_winner_and_reason_and_closes_the_game() -> None:
    game = GameScript()
    ended = check_append(owned(game), 1, [game.end("timeout", "black", "timeout")])

    assert (ended.state.status, ended.state.winner) == ("timeout", "black")
    with pytest.raises(GameOver):
        check_append(ended, 1, [game.move("e2e4")])


def test_a_game_created_event_cannot_be_appended() -> None:
    game = GameScript()
    again = replace(game.created(), seq=2)

    with pytest.raises(Conflict):
        check_append(owned(game), 1, [again])
