"""The pure checks of an append and the row change the writer sends for it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from persistence_helpers import GameScript

from livegame.actors.game.events import GameEvent, MovePlayed
from livegame.errors import Conflict, Fenced, GameOver
from livegame.persistence.state import (
    BoardState,
    OwnedBoard,
    RowChange,
    check_append,
    initial_state,
    row_change,
)


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


def applied(state: BoardState, change: RowChange) -> BoardState:
    """Apply ``change`` to ``state`` as the writer's statement does to the row."""
    ended = change.ended
    return BoardState(
        game_id=state.game_id,
        fen=state.fen if change.fen is None else change.fen,
        ply=state.ply if change.ply is None else change.ply,
        seq=change.seq,
        status=state.status if ended is None else ended.status,
        winner=state.winner if ended is None else ended.winner,
        reason=state.reason if ended is None else ended.reason,
        white_ms=change.white_ms if change.clocks else state.white_ms,
        black_ms=change.black_ms if change.clocks else state.black_ms,
        increment_ms=state.increment_ms,
        draw_offer=change.draw_offer,
        updated_at_ms=change.updated_at_ms,
    )


def appends_of_a_game(game: GameScript) -> list[list[GameEvent]]:
    """Changes of every shape: moves, offers, a declined offer, a mate."""
    return [
        [game.offer_draw("white")],
        [game.move("f2f3")],
        [game.move("e7e5"), game.offer_draw("black")],
        [game.decline_draw("white")],
        [game.offer_draw("white"), game.decline_draw("black"), game.move("g2g4")],
        [game.move("d8h4"), game.end("mate", "black", "checkmate")],
    ]


@pytest.mark.parametrize("initial_ms", [300_000, None])
def test_a_row_change_does_to_the_row_what_the_events_do_to_the_state(
    initial_ms: int | None,
) -> None:
    game = GameScript(initial_ms=initial_ms)
    before = owned(game)
    for events in appends_of_a_game(game):
        change = row_change(events)
        after = check_append(before, 1, events)

        assert change.after_seq == before.state.seq
        moves = [e for e in events if isinstance(e, MovePlayed)]
        assert change.after_ply == (moves[0].ply - 1 if moves else None)
        assert applied(before.state, change) == after.state
        before = after


def test_a_resignation_sets_the_clocks_and_closes_the_game() -> None:
    game = GameScript()
    ended = game.end("resign", "white", "resignation")

    change = row_change([ended])

    assert (change.after_seq, change.after_ply, change.ended) == (1, None, ended)
    assert applied(owned(game).state, change).status == "resign"


def test_a_row_change_needs_events_that_follow_each_other() -> None:
    game = GameScript()
    first = game.move("e2e4")
    game.move("e7e5")  # never sent: a gap before the next one
    after_gap = game.move("g1f3")

    with pytest.raises(Conflict, match="seq"):
        row_change([first, after_gap])
    with pytest.raises(Conflict, match="ply"):
        row_change([first, replace(after_gap, seq=first.seq + 1)])
    with pytest.raises(Conflict):
        row_change([])
    with pytest.raises(Conflict):
        row_change([replace(game.created(), seq=2)])


def test_nothing_follows_the_end_in_a_row_change() -> None:
    game = GameScript()

    with pytest.raises(GameOver):
        row_change([game.end("resign", "white", "resignation"), game.move("e2e4")])
