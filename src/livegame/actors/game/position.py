"""
What a python-chess position says, computed cheaply enough for every move.

For each move the rules core asks how the move is written (SAN), whether the
game has ended by itself and what the position's FEN is; the answers come
from here, as pure functions of a board, and match python-chess's own. Each
move needs a single search for a legal reply: the check suffix and the
ending share it. Claimable draws are here too, but only
:meth:`GameState.claim_draw` asks for them: they are never looked for per
move.
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


_PIECE_LETTERS = {
    chess.KNIGHT: "N",
    chess.BISHOP: "B",
    chess.ROOK: "R",
    chess.QUEEN: "Q",
    chess.KING: "K",
}


def plain_san(board: chess.Board, move: chess.Move) -> str:
    """
    Return the SAN of the legal ``move`` on ``board``, without a check suffix.

    Only a piece going where another piece of its kind could also go may
    need its origin written; python-chess settles those few moves.
    """
    from_square, to_square = move.from_square, move.to_square
    piece = board.piece_type_at(from_square)
    if piece is None:
        raise ValueError(f"no piece to play {move.uci()} in {board.fen()}")
    if piece == chess.KING and board.is_castling(move):
        queen_side = chess.square_file(to_square) < chess.square_file(from_square)
        return "O-O-O" if queen_side else "O-O"

    target = chess.SQUARE_NAMES[to_square]
    capture = bool(board.occupied_co[not board.turn] & chess.BB_SQUARES[to_square])
    if piece == chess.PAWN:
        # No pawn can step onto the en passant square but by taking.
        capture = capture or to_square == board.ep_square
        if capture:
            target = chess.FILE_NAMES[chess.square_file(from_square)] + "x" + target
        if move.promotion:
            target += "=" + _PIECE_LETTERS[move.promotion]
        return target

    # Any other piece that could go there attacks the square.
    rivals = board.attackers_mask(board.turn, to_square) & board.pieces_mask(
        piece, board.turn
    )
    if rivals & ~chess.BB_SQUARES[from_square]:
        return board.san(move).rstrip("+#")

    return _PIECE_LETTERS[piece] + ("x" if capture else "") + target


def check_suffix(board: chess.Board) -> str:
    """Return the SAN suffix of the move just pushed on ``board``: "#", "+", ""."""
    if not _attacked_king(board, board.turn):
        return ""

    return "+" if any(board.generate_legal_moves()) else "#"


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


# A square's symbol by its code: the piece type (1-6) in the low three
# bits, 8 added for Black; an empty square is written "1" here and runs of
# them are counted afterwards.
_FEN_SYMBOLS = "1PNBRQK11pnbrqk"
_EMPTY_RUNS = tuple(("1" * n, str(n)) for n in range(8, 1, -1))

# The text of each rank by its key (see fen_of). Ranks recur across
# positions and games (empty ranks, the opening's back ranks, pawn chains),
# so most are found here; past the limit, about 8 MB, new ones are written
# afresh each time.
_RANK_TEXTS: dict[bytes, str] = {}
_RANK_TEXTS_LIMIT = 1 << 16

_CASTLING_SYMBOLS = (
    (chess.BB_H1, "K"),
    (chess.BB_A1, "Q"),
    (chess.BB_H8, "k"),
    (chess.BB_A8, "q"),
)
# The castling field by the castling rights: at most sixteen entries.
_CASTLING_FIELDS: dict[chess.Bitboard, str] = {}


def fen_of(board: chess.Board) -> str:
    """Return ``board.fen()`` for standard chess, at a fraction of the cost."""
    # Four bit planes give each square's code: bit 0 of the piece type,
    # bit 1, bit 2, and the colour. Side by side in 32 bytes, every eighth
    # byte from a rank's own holds that rank's four bytes: its key.
    bishops, queens, kings = board.bishops, board.queens, board.kings
    planes = (
        (board.pawns | bishops | queens)
        | (board.knights | bishops | kings) << 64
        | (board.rooks | queens | kings) << 128
        | board.occupied_co[chess.BLACK] << 192
    ).to_bytes(32, "little")
    texts = _RANK_TEXTS
    placement = "/".join(
        [
            texts.get(key := planes[rank::8]) or _rank_text(key)
            for rank in (7, 6, 5, 4, 3, 2, 1, 0)
        ]
    )

    ep_square = board.ep_square
    en_passant = "-"
    if ep_square is not None and board.has_legal_en_passant():
        en_passant = chess.SQUARE_NAMES[ep_square]
    turn = "w" if board.turn == chess.WHITE else "b"
    rights = board.clean_castling_rights()
    castling = _CASTLING_FIELDS.get(rights) or _castling_field(rights)

    return (
        f"{placement} {turn} {castling} {en_passant} "
        f"{board.halfmove_clock} {board.fullmove_number}"
    )


def _rank_text(key: bytes) -> str:
    ones, twos, fours, black = key
    text = "".join(
        [
            _FEN_SYMBOLS[
                (ones >> file & 1)
                | (twos >> file & 1) << 1
                | (fours >> file & 1) << 2
                | (black >> file & 1) << 3
            ]
            for file in range(8)
        ]
    )
    for run, count in _EMPTY_RUNS:
        text = text.replace(run, count)
    if len(_RANK_TEXTS) < _RANK_TEXTS_LIMIT:
        _RANK_TEXTS[key] = text

    return text


def _castling_field(rights: chess.Bitboard) -> str:
    field = "".join([s for mask, s in _CASTLING_SYMBOLS if rights & mask]) or "-"
    _CASTLING_FIELDS[rights] = field

    return field
