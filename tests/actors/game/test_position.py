"""Tests of the per-move position checks against python-chess's own answers."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livegame.actors.game.position import claimable_draw, ending_after, fen_of


def after(fen: str, uci: str) -> tuple[chess.Board, str, bool]:
    """Return the board after ``uci``, its SAN and whether material changed."""
    board = chess.Board(fen)
    move = chess.Move.from_uci(uci)
    assert board.is_legal(move)
    material_changed = board.is_capture(move) or move.promotion is not None
    san = board.san_and_push(move)

    return board, san, material_changed


@pytest.mark.parametrize(
    "fen",
    [
        chess.STARTING_FEN,
        # En passant possible, so the square is written.
        "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
        # A double step no pawn can take: python-chess writes no square.
        "rnbqkbnr/pppp1ppp/8/4p3/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 2",
        # Some castling rights gone, a promoted queen, high move counters.
        "r3k2Q/8/8/8/8/8/8/4K2R b Kq - 37 112",
        "8/8/8/8/8/8/8/K6k w - - 0 1",
    ],
)
def test_the_fast_fen_matches_python_chess(fen: str) -> None:
    board = chess.Board(fen)

    assert fen_of(board) == board.fen()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_fast_fen_matches_python_chess_along_random_games(
    data: st.DataObject,
) -> None:
    board = chess.Board()
    for _ in range(data.draw(st.integers(0, 120))):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        if not legal:
            break
        board.push(data.draw(st.sampled_from(legal)))

        assert fen_of(board) == board.fen()


@pytest.mark.parametrize(
    ("fen", "uci", "ending"),
    [
        (
            "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2",
            "d8h4",
            ("mate", "black", "checkmate"),
        ),
        ("7k/8/6Q1/8/8/8/8/K7 w - - 0 1", "g6f7", ("stalemate", None, "stalemate")),
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
