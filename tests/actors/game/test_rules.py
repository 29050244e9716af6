"""
Tests of the rules core: real move sequences, no event loop.

Late-game rules (the seventy-five-move rule, material on a timeout) would need
hundreds of moves from the initial position; their tests start from a FEN
instead, by swapping the board of a fresh game (see :func:`game_from`).
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import chess
import pytest
from hypothesis import event as tally
from hypothesis import given, settings
from hypothesis import strategies as st

from livegame.actors.game.events import (
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
)
from livegame.actors.game.journal import InMemoryJournal
from livegame.actors.game.messages import ClockView, MoveResult
from livegame.actors.game.rules import GameState, create_game
from livegame.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GameOver,
    IllegalMove,
    LiveGameError,
    NotYourTurn,
    StalePly,
)

T = TypeVar("T")


def line(text: str) -> list[str]:
    """Return the UCI moves of a space-separated line."""
    return text.split()


WHITE, BLACK = "ann", "bob"
FOOLS_MATE = ["f2f3", "e7e5", "g2g4", "d8h4"]
# Sam Loyd's ten-move stalemate: Black has no legal move after 10. Qe6.
STALEMATE = line(
    "e2e3 a7a5 d1h5 a8a6 h5a5 h7h5 h2h4 a6h6 a5c7 f7f6 "
    "c7d7 e8f7 d7b7 d8d3 b7b8 d3h7 b8c8 f7g6 c8e6"
)
# Both knights out and back: the initial position again every four plies.
KNIGHT_SHUFFLE = ["g1f3", "g8f6", "f3g1", "f6g8"]


def new_game(initial_ms: int | None = None, increment_ms: int = 0) -> GameState:
    return GameState(create_game("g1", WHITE, BLACK, initial_ms, increment_ms, 0))


def game_from(fen: str, initial_ms: int | None = None) -> GameState:
    """
    Return a game whose board starts at ``fen``, White to move.

    The core only starts games from the initial position; this swaps the
    board of a fresh game. White must be to move so that ply parity still
    names the side to move.
    """
    state = new_game(initial_ms)
    state.board = chess.Board(fen)
    state.fen = fen
    assert state.board.turn == chess.WHITE

    return state


def mover(state: GameState) -> str:
    return WHITE if state.turn == "white" else BLACK


def apply_all(state: GameState, events: Iterable[GameEvent]) -> list[GameEvent]:
    applied = list(events)
    for event in applied:
        state.apply(event)

    return applied


def play(state: GameState, uci: str, now_ms: int = 0) -> list[GameEvent]:
    """Play ``uci`` for the side to move and apply its events."""
    return apply_all(state, state.play(mover(state), uci, state.ply, now_ms))


def play_line(state: GameState, ucis: Iterable[str], now_ms: int = 0) -> None:
    for uci in ucis:
        play(state, uci, now_ms)


def complete(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits, such as the in-memory journal's."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]

    raise AssertionError("the coroutine waited")


def snapshot(state: GameState, now_ms: int) -> tuple[object, ...]:
    """Return everything observable about a game at ``now_ms``."""
    return (
        state.view(now_ms),
        state.board.fen(),
        tuple(state.board.move_stack),
        tuple(state.moves),
        state.clock,
        state.ended,
    )


# Creation


def test_a_new_game_starts_at_ply_zero_with_white_to_move() -> None:
    view = new_game(60_000, 1_000).view(0)

    assert (view.status, view.ply, view.turn, view.seq) == ("started", 0, "white", 1)
    assert view.fen == chess.STARTING_FEN
    assert view.clock == ClockView(60_000, 60_000, 1_000, None)


@pytest.mark.parametrize(
    ("game_id", "white", "initial_ms", "increment_ms"),
    [
        ("", WHITE, None, 0),
        ("g", "", None, 0),
        ("g", WHITE, None, 5),
        ("g", WHITE, 0, 0),
    ],
)
def test_a_game_with_bad_settings_is_not_created(
    game_id: str, white: str, initial_ms: int | None, increment_ms: int
) -> None:
    with pytest.raises(BadRequest):
        create_game(game_id, white, BLACK, initial_ms, increment_ms, 0)


# Endings found after each move


def test_fools_mate_ends_the_game_with_black_winning() -> None:
    state = new_game()
    play_line(state, FOOLS_MATE[:-1])

    events = play(state, FOOLS_MATE[-1], now_ms=7)

    assert [type(e) for e in events] == [MovePlayed, GameEnded]
    ended = events[1]
    assert isinstance(ended, GameEnded)
    assert (ended.status, ended.winner, ended.reason) == ("mate", "black", "checkmate")
    assert (ended.seq, ended.ply, ended.at_ms) == (6, 4, 7)
    assert state.move_result(4).status == "mate"
    assert state.moves[-1].san == "Qh4#"


def test_a_known_stalemate_line_ends_in_stalemate() -> None:
    state = new_game()

    play_line(state, STALEMATE)

    assert (state.status, state.winner, state.reason) == (
        "stalemate",
        None,
        "stalemate",
    )


def test_capturing_the_last_mating_material_draws_at_once() -> None:
    state = game_from("4k3/8/8/8/8/8/3q4/4K3 w - - 0 40")

    play(state, "e1d2")

    assert (state.status, state.reason) == ("draw", "insufficient_material")


def test_a_fifth_occurrence_of_a_position_draws_without_a_claim() -> None:
    state = new_game()

    play_line(state, KNIGHT_SHUFFLE * 3)
    assert state.status == "started"

    play_line(state, KNIGHT_SHUFFLE)

    assert (state.status, state.reason, state.ply) == (
        "draw",
        "fivefold_repetition",
        16,
    )


def test_seventy_five_moves_without_capture_or_pawn_move_draw_without_a_claim() -> None:
    state = game_from("4k3/8/8/8/8/8/8/R3K3 w - - 149 120")

    play(state, "a1a2")

    assert (state.status, state.reason) == ("draw", "seventy_five_moves")


def test_mate_on_the_seventy_fifth_move_wins() -> None:
    state = game_from("k7/8/1K6/8/8/8/8/7R w - - 149 120")

    play(state, "h1h8")

    assert (state.status, state.winner) == ("mate", "white")


# Endings on claim or by a player


def test_threefold_repetition_draws_only_when_claimed() -> None:
    state = new_game()
    play_line(state, KNIGHT_SHUFFLE)
    with pytest.raises(Conflict, match="no draw to claim"):
        state.claim_draw(WHITE, 0)

    play_line(state, KNIGHT_SHUFFLE)
    assert state.status == "started"

    apply_all(state, state.claim_draw(BLACK, 0))

    assert (state.status, state.reason) == ("draw", "threefold_repetition")


def test_fifty_moves_without_capture_or_pawn_move_draw_only_when_claimed() -> None:
    state = game_from("4k3/8/8/8/8/8/8/R3K3 w - - 99 80")
    with pytest.raises(Conflict):
        state.claim_draw(WHITE, 0)

    play(state, "a1a2")
    assert state.status == "started"

    apply_all(state, state.claim_draw(WHITE, 0))

    assert (state.status, state.reason) == ("draw", "fifty_moves")


def test_resigning_gives_the_game_to_the_opponent() -> None:
    state = new_game()
    play(state, "e2e4")

    apply_all(state, state.resign(BLACK, 0))

    assert (state.status, state.winner, state.reason) == (
        "resign",
        "white",
        "resignation",
    )


def test_an_accepted_draw_offer_ends_the_game_by_agreement() -> None:
    state = new_game()
    offered = apply_all(state, state.offer_draw(WHITE, 3))
    assert offered == [DrawOffered("g1", 2, 0, "white", 3)]
    assert state.view(3).draw_offer == "white"

    apply_all(state, state.accept_draw(BLACK, 4))

    assert (state.status, state.reason, state.draw_offer) == (
        "draw",
        "agreement",
        None,
    )


def test_a_declined_draw_offer_is_withdrawn() -> None:
    state = new_game()
    apply_all(state, state.offer_draw(BLACK, 0))

    declined = apply_all(state, state.decline_draw(WHITE, 1))

    assert declined == [DrawDeclined("g1", 3, 0, "white", 1)]
    assert state.draw_offer is None
    with pytest.raises(Conflict):
        state.accept_draw(WHITE, 2)


def test_a_move_lets_a_pending_draw_offer_lapse() -> None:
    state = new_game()
    apply_all(state, state.offer_draw(WHITE, 0))

    play(state, "e2e4")

    assert state.draw_offer is None
    with pytest.raises(Conflict):
        state.accept_draw(BLACK, 0)


def test_repeating_ones_own_draw_offer_changes_nothing() -> None:
    state = new_game()
    apply_all(state, state.offer_draw(WHITE, 0))

    assert state.offer_draw(WHITE, 1) == ()


def test_offering_a_draw_while_the_opponent_offers_one_accepts_it() -> None:
    state = new_game()
    apply_all(state, state.offer_draw(WHITE, 0))

    apply_all(state, state.offer_draw(BLACK, 1))

    assert (state.status, state.reason) == ("draw", "agreement")


@pytest.mark.parametrize("method", ["accept_draw", "decline_draw"])
def test_answering_a_draw_offer_needs_one_from_the_opponent(method: str) -> None:
    state = new_game()
    with pytest.raises(Conflict, match="no draw offer"):
        getattr(state, method)(BLACK, 0)

    apply_all(state, state.offer_draw(WHITE, 0))
    with pytest.raises(Conflict, match="no draw offer"):
        getattr(state, method)(WHITE, 0)


@pytest.mark.parametrize("plies", [0, 1])
def test_a_game_can_be_aborted_before_both_sides_have_moved(plies: int) -> None:
    state = new_game()
    play_line(state, ["e2e4"][:plies])

    apply_all(state, state.abort(BLACK, 0))

    assert (state.status, state.winner, state.reason) == ("aborted", None, "aborted")


def test_a_game_cannot_be_aborted_once_both_sides_have_moved() -> None:
    state = new_game()
    play_line(state, ["e2e4", "e7e5"])

    with pytest.raises(Conflict, match="both sides"):
        state.abort(WHITE, 0)


def test_a_player_of_both_sides_plays_whichever_side_is_to_move() -> None:
    state = GameState(create_game("solo", WHITE, WHITE, None, 0, 0))

    for uci in FOOLS_MATE:
        apply_all(state, state.play(WHITE, uci, state.ply, 0))

    assert state.winner == "black"


# Clocks


def test_the_clock_starts_after_the_first_move_of_each_side() -> None:
    state = new_game(60_000, 1_000)
    play(state, "e2e4", now_ms=5_000)
    assert state.view(9_000).clock == ClockView(60_000, 60_000, 1_000, None)

    play(state, "e7e5", now_ms=9_000)

    assert state.view(9_250).clock == ClockView(59_750, 60_000, 1_000, "white")
    assert state.flag_deadline_ms() == 69_000


def test_each_timed_move_records_the_clocks_with_the_increment() -> None:
    state = new_game(60_000, 1_000)
    play_line(state, ["e2e4", "e7e5"], now_ms=0)

    events = play(state, "g1f3", now_ms=1_234)

    move = events[0]
    assert isinstance(move, MovePlayed)
    assert (move.white_ms, move.black_ms) == (60_000 - 1_234 + 1_000, 60_000)
    assert state.move_result(3).clock == ClockView(59_766, 60_000, 1_000, "black")


def test_the_flag_falls_with_no_move_and_the_opponent_wins() -> None:
    state = new_game(10_000)
    play_line(state, ["e2e4", "e7e5"], now_ms=100)
    assert state.check_flag(10_099) is None

    ended = state.check_flag(10_100)

    assert ended is not None
    assert (ended.status, ended.winner, ended.reason) == ("timeout", "black", "timeout")
    assert (ended.white_ms, ended.black_ms) == (0, 10_000)
    state.apply(ended)
    assert state.flag_deadline_ms() is None
    assert state.check_flag(99_999) is None


def test_a_move_after_the_flag_fell_is_refused_and_changes_nothing() -> None:
    state = new_game(10_000)
    play_line(state, ["e2e4", "e7e5"], now_ms=0)
    before = snapshot(state, 10_000)

    with pytest.raises(GameOver, match="white ran out of time"):
        state.play(WHITE, "g1f3", 2, 10_000)
    with pytest.raises(GameOver):
        state.offer_draw(BLACK, 10_000)

    assert snapshot(state, 10_000) == before


def test_a_flag_against_a_lone_king_is_a_draw() -> None:
    state = game_from("4k3/8/8/8/8/8/8/Q3K3 w - - 0 40", initial_ms=5_000)
    play_line(state, ["a1a2", "e8d8"], now_ms=0)

    ended = state.check_flag(5_000)

    assert ended is not None
    assert (ended.status, ended.winner, ended.reason) == (
        "draw",
        None,
        "timeout_vs_insufficient_material",
    )


def test_an_ending_stops_the_clock_at_that_moment() -> None:
    state = new_game(10_000)
    play_line(state, ["e2e4", "e7e5"], now_ms=0)

    apply_all(state, state.resign(BLACK, 2_500))

    assert state.view(9_999_999).clock == ClockView(7_500, 10_000, 0, None)


# Retries


def test_a_retried_move_returns_the_original_result_and_no_events() -> None:
    state = new_game(60_000, 1_000)
    play(state, "e2e4", now_ms=10)
    original = state.move_result(1)
    play(state, "e7e5", now_ms=20)

    assert state.play(WHITE, "e2e4", 0, now_ms=30) == ()
    assert state.move_result(1) == original
    assert state.seq == 3


def test_a_retried_mating_move_still_returns_the_mate() -> None:
    state = new_game()
    play_line(state, FOOLS_MATE)

    assert state.play(BLACK, "d8h4", 3, 0) == ()
    assert state.move_result(4) == MoveResult(
        4, "d8h4", "Qh4#", state.fen, "mate", "black", "checkmate", None
    )


def test_a_move_followed_by_a_resignation_keeps_its_own_result() -> None:
    state = new_game()
    play(state, "e2e4")
    apply_all(state, state.resign(BLACK, 0))

    assert state.play(WHITE, "e2e4", 0, 0) == ()
    assert state.move_result(1).status == "started"


@pytest.mark.parametrize(
    ("player", "uci", "ply"),
    [(WHITE, "d2d4", 0), (BLACK, "e2e4", 0), (WHITE, "e2e4", 1), (WHITE, "e2e4", 2)],
)
def test_anything_but_an_exact_retry_at_an_old_ply_is_stale(
    player: str, uci: str, ply: int
) -> None:
    state = new_game()
    play_line(state, ["e2e4", "e7e5", "g1f3"])

    with pytest.raises(StalePly):
        state.play(player, uci, ply, 0)


# Refusals


@pytest.mark.parametrize(
    ("player", "uci", "ply", "error"),
    [
        ("eve", "g1f3", 2, Forbidden),
        (BLACK, "g8f6", 2, NotYourTurn),
        (WHITE, "g1f3", 1, StalePly),
        (WHITE, "g1f3", 3, StalePly),
        (WHITE, "g1f3", -1, StalePly),
        (WHITE, "e4e5", 2, IllegalMove),
        (WHITE, "e1g1", 2, IllegalMove),
        (WHITE, "0000", 2, IllegalMove),
        (WHITE, "e2e9", 2, IllegalMove),
        (WHITE, "hello", 2, IllegalMove),
        (WHITE, "", 2, IllegalMove),
        (WHITE, "G1F3", 2, IllegalMove),
        (WHITE, "e2e4" * 1000, 2, IllegalMove),
    ],
)
def test_a_bad_move_is_refused_and_changes_nothing(
    player: str, uci: str, ply: int, error: type[LiveGameError]
) -> None:
    state = new_game(60_000)
    play_line(state, ["e2e4", "e7e5"])
    before = snapshot(state, 1_000)

    with pytest.raises(error):
        state.play(player, uci, ply, 1_000)

    assert snapshot(state, 1_000) == before


@pytest.mark.parametrize(
    ("fen", "uci"),
    [
        # The knight is pinned to its king.
        ("4r1k1/8/8/8/8/8/4N3/4K3 w - - 0 1", "e2c3"),
        # The king steps into the rook's line.
        ("4k3/8/8/8/8/8/3r4/4K3 w - - 0 1", "e1e2"),
        # Taking en passant empties the rank between the king and the rook.
        ("8/8/8/KPp4r/8/8/8/7k w - c6 0 2", "b5c6"),
        # Castling through a square the queen attacks.
        ("4k3/8/8/8/8/3q4/8/R3K3 w Q - 0 1", "e1c1"),
    ],
)
def test_a_move_that_leaves_its_king_attacked_is_refused_and_changes_nothing(
    fen: str, uci: str
) -> None:
    state = game_from(fen)
    before = snapshot(state, 0)

    with pytest.raises(IllegalMove, match=f"illegal move {uci}"):
        state.play(WHITE, uci, 0, 0)

    assert snapshot(state, 0) == before


@pytest.mark.parametrize(
    "method",
    ["resign", "offer_draw", "accept_draw", "decline_draw", "claim_draw", "abort"],
)
def test_only_players_may_act_on_a_game(method: str) -> None:
    state = new_game()

    with pytest.raises(Forbidden):
        getattr(state, method)("eve", 0)


@pytest.mark.parametrize(
    "method",
    ["resign", "offer_draw", "accept_draw", "decline_draw", "claim_draw", "abort"],
)
def test_nothing_can_be_done_after_the_end(method: str) -> None:
    state = new_game()
    play_line(state, FOOLS_MATE)
    before = snapshot(state, 0)

    with pytest.raises(GameOver):
        getattr(state, method)(WHITE, 0)
    with pytest.raises(GameOver):
        state.play(WHITE, "e2e4", 4, 0)

    assert snapshot(state, 0) == before


def test_an_event_out_of_order_is_rejected_without_change() -> None:
    state = new_game()
    events = state.play(WHITE, "e2e4", 0, 0)
    apply_all(state, events)
    before = snapshot(state, 0)

    with pytest.raises(ValueError, match="does not follow"):
        state.apply(events[0])

    assert snapshot(state, 0) == before


def test_a_timed_event_without_clocks_is_rejected_without_change() -> None:
    state = new_game(60_000)
    move = state.play(WHITE, "e2e4", 0, 0)[0]
    assert isinstance(move, MovePlayed)
    before = snapshot(state, 0)

    with pytest.raises(ValueError, match="both clocks"):
        state.apply(replace(move, white_ms=None))

    assert snapshot(state, 0) == before


def test_a_game_cannot_be_created_twice() -> None:
    state = new_game()

    with pytest.raises(ValueError, match="cannot follow"):
        state.apply(GameCreated("g1", 2, WHITE, BLACK, None, 0, 0))


# Views and replay


def test_the_view_lists_moves_and_the_position() -> None:
    state = new_game()
    play_line(state, ["e2e4", "c7c5"], now_ms=42)

    view = state.view(50)

    assert view.moves == ("e2e4", "c7c5")
    assert view.fen == state.board.fen()
    assert (view.turn, view.updated_at_ms) == ("white", 42)
    assert [m.ply for m in state.moves_since(1)] == [2]
    assert state.moves_since(2) == ()


def test_a_move_played_but_not_applied_leaves_the_game_as_it_was() -> None:
    state = new_game(60_000)
    play_line(state, ["e2e4", "e7e5"])
    before = snapshot(state, 1_000)

    state.play(WHITE, "g1f3", 2, 1_000)

    assert snapshot(state, 1_000) == before
    play(state, "g1f3", 1_000)
    assert state.board.fen() == state.moves[-1].fen


def test_the_game_may_be_read_between_play_and_apply() -> None:
    state = new_game(60_000)
    played = state.play(WHITE, "e2e4", 0, 10)

    assert state.view(10).fen == chess.STARTING_FEN
    apply_all(state, played)

    assert state.view(10).fen == state.board.fen() == played[0].fen
    assert state.board.move_stack == [chess.Move.from_uci("e2e4")]


def test_another_event_first_takes_back_a_move_not_applied() -> None:
    state = new_game()
    play(state, "e2e4")
    state.play(BLACK, "e7e5", 1, 0)

    apply_all(state, state.resign(BLACK, 0))

    assert state.board.move_stack == [chess.Move.from_uci("e2e4")]
    assert (state.status, state.ply, state.winner) == ("resign", 1, "white")


def test_a_copy_of_a_move_event_takes_the_full_path_to_the_same_state() -> None:
    live, copy = new_game(60_000, 1_000), new_game(60_000, 1_000)

    for ply, uci in enumerate(FOOLS_MATE):
        events = live.play(mover(live), uci, ply, 100 * ply)
        apply_all(live, events)
        apply_all(copy, [replace(event) for event in events])

    assert snapshot(copy, 1_000) == snapshot(live, 1_000)


def test_a_game_rebuilt_from_its_history_matches_the_live_one() -> None:
    journal = InMemoryJournal()
    state = new_game(60_000, 1_000)
    complete(journal.create(state.created))

    def run(events: tuple[GameEvent, ...]) -> None:
        complete(journal.append("g1", 1, events))
        apply_all(state, events)

    run(state.play(WHITE, "e2e4", 0, 10))
    run(state.offer_draw(BLACK, 11))
    run(state.decline_draw(WHITE, 12))
    run(state.play(BLACK, "e7e5", 1, 20))
    run(state.play(WHITE, "g1f3", 2, 900))
    run(state.offer_draw(WHITE, 950))
    history = complete(journal.load("g1"))
    assert history is not None

    rebuilt = GameState.from_history(history)

    assert snapshot(rebuilt, 1_000) == snapshot(state, 1_000)
    assert rebuilt.draw_offer == "white"
    rebuilt_from_events = GameState.from_events(state.created, journal.events("g1"))
    assert snapshot(rebuilt_from_events, 1_000) == snapshot(state, 1_000)


# Mostly moves, so that games get far enough to end on the board or the clock.
_COMMANDS = ["move"] * 60 + [
    "retry",
    "offer_draw",
    "accept_draw",
    "decline_draw",
    "claim_draw",
    "resign",
    "abort",
]


def random_command(
    data: st.DataObject, state: GameState, now_ms: int
) -> tuple[GameEvent, ...]:
    """Draw one command, legal or not, and return its events."""
    command = data.draw(st.sampled_from(_COMMANDS))
    if command == "move":
        legal = sorted(move.uci() for move in state.board.legal_moves)
        uci = data.draw(st.sampled_from(legal))
        return state.play(mover(state), uci, state.ply, now_ms)
    if command == "retry":
        if not state.moves:
            return ()
        ply = data.draw(st.integers(0, state.ply - 1))
        result = state.move_result(ply + 1)
        player = WHITE if ply % 2 == 0 else BLACK
        assert state.play(player, state.moves[ply].uci, ply, now_ms) == ()
        assert state.move_result(ply + 1) == result
        return ()

    player = data.draw(st.sampled_from([WHITE, BLACK]))
    events: tuple[GameEvent, ...] = getattr(state, command)(player, now_ms)

    return events


@settings(max_examples=60, deadline=None)
@given(data=st.data(), timed=st.booleans())
def test_replaying_the_journal_rebuilds_the_live_game(
    data: st.DataObject, timed: bool
) -> None:
    journal = InMemoryJournal()
    state = new_game(5_000 if timed else None, 100 if timed else 0)
    complete(journal.create(state.created))
    now_ms = 0

    for _ in range(data.draw(st.integers(0, 250), label="steps")):
        now_ms += data.draw(st.integers(0, 1_500), label="wait")
        # As the game actor does before each command: the flag comes first.
        ended = state.check_flag(now_ms)
        before = snapshot(state, now_ms)
        try:
            events = (ended,) if ended else random_command(data, state, now_ms)
        except LiveGameError:
            assert snapshot(state, now_ms) == before
            continue

        complete(journal.append("g1", 1, events))
        apply_all(state, events)
        if state.is_over:
            break

    tally(f"ended by {state.reason}")
    board = chess.Board()
    for move in state.moves:
        assert move.san == board.san(board.parse_uci(move.uci))
        board.push_uci(move.uci)
        assert move.fen == board.fen()
    history = complete(journal.load("g1"))
    assert history is not None
    assert snapshot(GameState.from_history(history), now_ms) == snapshot(state, now_ms)
    replayed = GameState.from_events(state.created, journal.events("g1"))
    assert snapshot(replayed, now_ms) == snapshot(state, now_ms)
