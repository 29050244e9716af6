"""
How moves and positions are written: SAN and FEN, the same text python-chess
writes, cheaply enough for every move.

The rules core writes a move's SAN before making it and its check suffix
after. Finding "#" takes the move's one search for a legal reply, and
:func:`~livegame.actors.game.position.ending_after` reads mate from the
suffix instead of searching again.
"""

from __future__ import annotations

import chess

from livegame.actors.game.position import in_check

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
    if not in_check(board):
        return ""

    return "+" if any(board.generate_legal_moves()) else "#"


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
