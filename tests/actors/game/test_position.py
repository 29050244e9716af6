"""Tests of the per-move position checks against python-chess's own answers."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livegame.actors.game.position import (
    claimable_draw,
    ending_after,
    is_pseudo_legal,
    left_in_check,
)


def after(fen: str, uci: str) -> tuple[chess.Board, str, bool]:
    """Return the board after ``uci``, its SAN and whether material changed."""
    board = chess.Board(fen)
    move = chess.Move.from_uci(uci)
    assert board.is_legal(move)
    material_changed = board.is_capture(move) or move.promotion is not None
    san = board.san_and_push(move)

    return board, san, material_changed


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_endings_match_python_chess_along_random_games(
    data: st.DataObject,
) -> None:
    board = chess.Board()
    for _ in range(data.draw(st.integers(0, 300))):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        if not legal:
            break
        move = data.draw(st.sampled_from(legal))
        material_changed = board.is_capture(move) or move.promotion is not None
        san = board.san_and_push(move)

        ending = ending_after(board, san, material_changed=material_changed)

        reason = None if ending is None else ending[2]
        assert (reason == "checkmate") == board.is_checkmate()
        assert (reason == "stalemate") == board.is_stalemate()
        if ending is not None:
            break


@pytest.mark.parametrize(
    "fen",
    [
        chess.STARTING_FEN,
        # En passant on either side, and a pawn beside the square that may not.
        "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
        "rnbqkbnr/pppp1ppp/8/8/3Pp3/5N2/PPP1PPPP/RNBQKB1R b KQkq d3 0 3",
        # Promotions by a step and by a capture, for both sides.
        "1r2k3/P7/8/8/8/8/6p1/4K2R w - - 0 1",
        "1r2k3/P7/8/8/8/8/6p1/4K2R b - - 0 1",
    ],
)
def test_pseudo_legality_matches_python_chess_for_every_pawn_move(fen: str) -> None:
    board = chess.Board(fen)
    promotions = [None, *chess.PIECE_TYPES]

    for pawn in chess.scan_forward(board.pawns & board.occupied_co[board.turn]):
        for to_square in chess.SQUARES:
            for promotion in promotions:
                move = chess.Move(pawn, to_square, promotion)
                assert is_pseudo_legal(board, move) == board.is_pseudo_legal(move)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_pseudo_legality_matches_python_chess_along_random_games(
    data: st.DataObject,
) -> None:
    board = chess.Board()
    for _ in range(data.draw(st.integers(0, 80))):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        if not legal:
            break
        board.push(data.draw(st.sampled_from(legal)))
        for move in board.generate_pseudo_legal_moves():
            assert is_pseudo_legal(board, move)
        ours = board.occupied_co[board.turn]
        for to_square in chess.SQUARES:
            for pawn in chess.scan_forward(board.pawns & ours):
                move = chess.Move(pawn, to_square)
                assert is_pseudo_legal(board, move) == board.is_pseudo_legal(move)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_a_king_left_attacked_is_seen_as_python_chess_sees_it(
    data: st.DataObject,
) -> None:
    board = chess.Board()
    for _ in range(data.draw(st.integers(0, 100))):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        if not legal:
            break
        for move in board.generate_pseudo_legal_moves():
            board.push(move)
            assert left_in_check(board) == board.was_into_check()
            board.pop()
        board.push(data.draw(st.sampled_from(legal)))


@pytest.mark.parametrize(
    ("fen", "uci", "ending"),
    [
        (
            "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2",
            "d8h4",
            ("mate", "black", "checkmate"),
        ),
        ("7k/8/6Q1/8/8/8/8/K7 w - - 0 1", "g6f7", ("stalemate", None, "stalemate")),
        # Stalemate though Black keeps a knight, pinned, and a pawn, blocked.
        (
            "k7/n1K5/8/7p/7P/8/8/1R6 w - - 0 1",
            "b1a1",
            ("stalemate", None, "stalemate"),
        ),
        ("8/8/8/8/8/8/3q4/K2k4 w - - 0 1", "a1b1", None),
        (
            "4k3/8/8/8/8/8/3q4/4K3 w - - 0 1",
            "e1d2",
            ("draw", None, "insufficient_material"),
        ),
        (
            "4k3/8/8/8/8/8/8/R3K3 w - - 149 99",
            "a1a2",
            ("draw", None, "seventy_five_moves"),
        ),
        ("4k3/8/8/8/8/8/8/R3K3 w - - 148 99", "a1a2", None),
    ],
)
def test_an_ending_is_found_right_after_the_move(
    fen: str, uci: str, ending: tuple[str, str | None, str] | None
) -> None:
    board, san, material_changed = after(fen, uci)

    assert ending_after(board, san, material_changed=material_changed) == ending


def test_a_check_that_is_not_mate_ends_nothing() -> None:
    board, san, material_changed = after("4k3/8/8/8/8/8/8/R3K3 w - - 0 1", "a1a8")

    assert san == "Ra8+"
    assert ending_after(board, san, material_changed=material_changed) is None


def test_draws_are_claimable_on_three_occurrences_or_fifty_moves() -> None:
    board = chess.Board()
    assert claimable_draw(board) is None

    for uci in ["g1f3", "g8f6", "f3g1", "f6g8"] * 2:
        board.push_uci(uci)

    assert claimable_draw(board) == "threefold_repetition"
    assert claimable_draw(chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 100 80")) == (
        "fifty_moves"
    )
