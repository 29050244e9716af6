"""Tests of the SAN and FEN writers against python-chess's own text."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livegame.actors.game import notation
from livegame.actors.game.notation import check_suffix, fen_of, plain_san


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


def test_the_fast_fen_is_right_with_its_rank_memo_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notation, "_RANK_TEXTS", {})
    monkeypatch.setattr(notation, "_RANK_TEXTS_LIMIT", 0)
    board = chess.Board()
    for uci in ["e2e4", "d7d5", "e4d5", "g8f6", "f1b5", "c7c6"]:
        board.push_uci(uci)

        assert fen_of(board) == board.fen()
    assert notation._RANK_TEXTS == {}


def san_of(board: chess.Board, move: chess.Move) -> str:
    """Return the SAN the rules core writes for ``move``, suffix and all."""
    san = plain_san(board, move)
    board.push(move)
    try:
        return san + check_suffix(board)
    finally:
        board.pop()


@pytest.mark.parametrize(
    ("fen", "uci", "san"),
    [
        ("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1g1", "O-O"),
        ("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8c8", "O-O-O"),
        # En passant is written as any pawn capture.
        (
            "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
            "e5f6",
            "exf6",
        ),
        ("1r2k3/P7/8/8/8/8/8/4K3 w - - 0 1", "a7b8q", "axb8=Q+"),
        # Two pieces of a kind reach the square: the file, the rank or both
        # name the one that goes.
        ("4k3/8/8/8/8/8/8/1N2KN2 w - - 0 1", "b1d2", "Nbd2"),
        ("4k3/R7/8/8/8/8/8/R3K3 w - - 0 1", "a1a4", "R1a4"),
        ("4k3/8/8/8/8/Q7/8/Q1Q1K3 w - - 0 1", "a1b2", "Qa1b2"),
        # The other knight is pinned to its king, so no origin is written.
        ("4r2k/8/8/8/8/2N1N3/8/4K3 w - - 0 1", "c3d5", "Nd5"),
        ("6k1/5ppp/8/8/8/8/8/R3K3 w - - 0 1", "a1a8", "Ra8#"),
        ("4k3/8/8/8/8/8/8/R3K3 w - - 0 1", "a1a8", "Ra8+"),
    ],
)
def test_a_move_is_written_as_python_chess_writes_it(
    fen: str, uci: str, san: str
) -> None:
    board = chess.Board(fen)
    move = chess.Move.from_uci(uci)

    assert san_of(board, move) == san == board.san(move)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_every_legal_move_is_written_as_python_chess_writes_it_along_random_games(
    data: st.DataObject,
) -> None:
    board = chess.Board()
    for _ in range(data.draw(st.integers(0, 120))):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        if not legal:
            break
        for move in legal:
            assert san_of(board, move) == board.san(move)
        board.push(data.draw(st.sampled_from(legal)))
