"""
What a python-chess position says, computed cheaply enough for every move.

After each move the rules core asks whether the game has ended by itself and
what the position's FEN is; both answers come from here, as pure functions of
a board. Claimable draws are here too, but only :meth:`GameState.claim_draw`
asks for them: they are never looked for per move.
"""

from __future__ import annotations

import chess

from livegame.actors.game.events import Color, Status

# How a game ends: its status, its winner and the reason given.
Ending = tuple[Status, Color | None, str]

# Reasons of the endings a move reaches by itself, in the move's own change.
AUTOMATIC_ENDINGS = frozenset(
    {
        "checkmate",
        "stalemate",
        "insufficient_material",
        "fivefold_repetition",
        "seventy_five_moves",
    }
)

# Half-moves without capture or pawn move that end a game, or allow a claim.
_SEVENTY_FIVE_MOVES = 150
_FIFTY_MOVES = 100

# A fifth occurrence needs at least 16 reversible plies since the last pawn
# move or capture; below that the repetition scan is skipped.
_FIVEFOLD_MIN_HALFMOVES = 16


def ending_after(
    board: chess.Board, san: str, *, material_changed: bool
) -> Ending | None:
    """
    Return the ending the move just pushed on ``board`` reached, if any.

    Args:
        board: the position after the move.
        san: the move's SAN, as python-chess wrote it with its check suffix.
        material_changed: the move captured or promoted.
    """
    mover: Color = "black" if board.turn == chess.WHITE else "white"
    # python-chess has already searched for mate to write the SAN suffix.
    if san.endswith("#"):
        return ("mate", mover, "checkmate")
    # Only a capture or a promotion changes the material on the board.
    if material_changed and board.is_insufficient_material():
        return ("draw", None, "insufficient_material")
    # In check but not mated means a legal reply exists.
    if not san.endswith("+") and not any(board.generate_legal_moves()):
        return ("stalemate", None, "stalemate")
    if board.halfmove_clock >= _SEVENTY_FIVE_MOVES:
        return ("draw", None, "seventy_five_moves")
    if board.halfmove_clock >= _FIVEFOLD_MIN_HALFMOVES and board.is_repetition(5):
        return ("draw", None, "fivefold_repetition")

    return None


def claimable_draw(board: chess.Board) -> str | None:
    """
    Return why a draw may be claimed in this position, or None.

    The claim rests on the position as it stands: it has occurred three
    times, or fifty moves by each side passed without a capture or a pawn
    move. A claim by announcing the next move is not supported.
    """
    if board.halfmove_clock >= _FIFTY_MOVES:
        return "fifty_moves"
    if board.is_repetition(3):
        return "threefold_repetition"

    return None


_EMPTY_RUNS = tuple(("1" * n, str(n)) for n in range(8, 1, -1))
_CASTLING_SYMBOLS = (
    (chess.BB_H1, "K"),
    (chess.BB_A1, "Q"),
    (chess.BB_H8, "k"),
    (chess.BB_A8, "q"),
)


def fen_of(board: chess.Board) -> str:
    """Return ``board.fen()`` for standard chess, at a quarter of the cost."""
    cells = ["1"] * 64
    white, black = board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK]
    for pieces, symbol in (
        (board.pawns, "p"),
        (board.knights, "n"),
        (board.bishops, "b"),
        (board.rooks, "r"),
        (board.queens, "q"),
        (board.kings, "k"),
    ):
        _place(cells, pieces & white, symbol.upper())
        _place(cells, pieces & black, symbol)
    placement = "/".join(
        ["".join(cells[rank : rank + 8]) for rank in range(56, -8, -8)]
    )
    for run, count in _EMPTY_RUNS:
        placement = placement.replace(run, count)

    rights = board.clean_castling_rights()
    castling = "".join([s for mask, s in _CASTLING_SYMBOLS if rights & mask]) or "-"
    ep_square = board.ep_square
    en_passant = "-"
    if ep_square is not None and board.has_legal_en_passant():
        en_passant = chess.SQUARE_NAMES[ep_square]
    turn = "w" if board.turn == chess.WHITE else "b"

    return (
        f"{placement} {turn} {castling} {en_passant} "
        f"{board.halfmove_clock} {board.fullmove_number}"
    )


def _place(cells: list[str], squares: chess.Bitboard, symbol: str) -> None:
    while squares:
        lowest = squares & -squares
        cells[lowest.bit_length() - 1] = symbol
        squares ^= lowest
