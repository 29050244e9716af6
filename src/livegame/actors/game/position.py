"""
What a python-chess position says, computed cheaply enough for every move.

For each move the rules core asks whether the move may be made (pseudo-legal
before it, its own king not left attacked after it) and whether the game has
ended by itself; the answers come from here, as pure functions of a board,
and match python-chess's own. Claimable draws are here too, but only
:meth:`GameState.claim_draw` asks for them: they are never looked for per
move. How moves and positions are written is
:mod:`livegame.actors.game.notation`'s business.
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

# Every square on a rank, file or diagonal through each square.
_KING_LINES = [
    chess.BB_RANK_ATTACKS[square][0]
    | chess.BB_FILE_ATTACKS[square][0]
    | chess.BB_DIAG_ATTACKS[square][0]
    for square in chess.SQUARES
]

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
    if not san.endswith("+") and not _can_move_unchecked(board):
        return ("stalemate", None, "stalemate")
    if board.halfmove_clock >= _SEVENTY_FIVE_MOVES:
        return ("draw", None, "seventy_five_moves")
    if board.halfmove_clock >= _FIVEFOLD_MIN_HALFMOVES and board.is_repetition(5):
        return ("draw", None, "fivefold_repetition")

    return None


def _can_move_unchecked(board: chess.Board) -> bool:
    """Return whether the side to move, which is not in check, has a move."""
    turn = board.turn
    king = _king(board, turn)
    if king is not None:
        # A piece on no line through its king is pinned by nothing, so with
        # the king not in check any step it can make is a legal move. Such
        # a knight or pawn almost always exists, which spares the search.
        ours = board.occupied_co[turn]
        unpinned = ours & ~_KING_LINES[king]
        pawns = board.pawns & unpinned
        steps = pawns << 8 if turn == chess.WHITE else pawns >> 8
        if steps & ~board.occupied & chess.BB_ALL:
            return True

        for knight in chess.scan_forward(board.knights & unpinned):
            if chess.BB_KNIGHT_ATTACKS[knight] & ~ours:
                return True

    return any(board.generate_legal_moves())


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


_PROMOTIONS = frozenset({chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN})
_BACK_RANKS = chess.BB_RANK_1 | chess.BB_RANK_8
# Where a pawn of each side may land after two steps, as python-chess allows.
_DOUBLE_STEP_RANKS = (
    chess.BB_RANK_6 | chess.BB_RANK_5,
    chess.BB_RANK_3 | chess.BB_RANK_4,
)


def is_pseudo_legal(board: chess.Board, move: chess.Move) -> bool:
    """
    Return ``board.is_pseudo_legal(move)``: the piece may go there, check aside.

    Pawn moves, some four in ten, are settled here from the bitboards;
    python-chess settles them by generating the pawn's moves.
    """
    from_square, to_square = move.from_square, move.to_square
    turn = board.turn
    origin = chess.BB_SQUARES[from_square]
    if not board.pawns & board.occupied_co[turn] & origin or move.drop:
        return board.is_pseudo_legal(move)

    target = chess.BB_SQUARES[to_square]
    # A pawn reaching the last rank promotes, and only then.
    if target & _BACK_RANKS:
        if move.promotion not in _PROMOTIONS:
            return False
    elif move.promotion is not None:
        return False

    occupied = board.occupied
    if target & chess.BB_PAWN_ATTACKS[turn][from_square]:
        if target & board.occupied_co[not turn]:
            return True
        # En passant: onto the empty square behind a pawn that just stepped
        # two, from beside it.
        fifth_rank = chess.BB_RANK_5 if turn == chess.WHITE else chess.BB_RANK_4
        return bool(
            to_square == board.ep_square
            and not target & occupied
            and origin & fifth_rank
        )

    step = 8 if turn == chess.WHITE else -8
    if to_square == from_square + step:
        return not target & occupied
    if to_square == from_square + 2 * step:
        path = target | chess.BB_SQUARES[from_square + step]
        return not path & occupied and bool(target & _DOUBLE_STEP_RANKS[turn])

    return False


def in_check(board: chess.Board) -> bool:
    """Return whether the side to move is in check, like ``board.is_check()``."""
    return _attacked_king(board, board.turn)


def left_in_check(board: chess.Board) -> bool:
    """Return whether the move just pushed left its own king attacked."""
    return _attacked_king(board, not board.turn)


def _attacked_king(board: chess.Board, color: chess.Color) -> bool:
    """Return whether ``color``'s king is attacked, like ``board.is_check()``."""
    king = _king(board, color)

    return king is not None and bool(board.attackers_mask(not color, king))


def _king(board: chess.Board, color: chess.Color) -> chess.Square | None:
    """Return ``board.king(color)`` without python-chess's two calls."""
    kings = board.kings & board.occupied_co[color] & ~board.promoted

    return kings.bit_length() - 1 if kings else None
