"""
A game as PGN, the format every chess program reads.

The Seven Tag Roster, then the time control, the termination and the game's
id; each move carries the mover's clock after it (``[%clk 0:04:58]``) in a
game with a clock. python-chess writes the movetext and escapes the tags.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

import chess
import chess.pgn

from livegame.actors.game.events import MovePlayed, color_to_move
from livegame.actors.game.messages import GameView

MEDIA_TYPE: Final = "application/x-chess-pgn"

# PGN's Termination tag knows a few words; the game's own reason goes in a
# tag of its own.
_TERMINATION: Final = {
    "started": "unterminated",
    "timeout": "time forfeit",
    "aborted": "abandoned",
}


def result_of(view: GameView) -> str:
    """Return the PGN result: 1-0, 0-1, 1/2-1/2, or * for no result."""
    if view.winner == "white":
        return "1-0"
    if view.winner == "black":
        return "0-1"
    if view.status in {"draw", "stalemate"}:
        return "1/2-1/2"
    return "*"


def game_pgn(view: GameView, moves: Sequence[MovePlayed], site: str = "?") -> str:
    """Return the game as one PGN game, ending with a newline."""
    game = chess.pgn.Game()
    created = time.gmtime(view.created_at_ms / 1000)
    headers = game.headers
    headers["Event"] = "Live game"
    headers["Site"] = site
    headers["Date"] = time.strftime("%Y.%m.%d", created)
    headers["Round"] = "-"
    headers["White"] = view.white
    headers["Black"] = view.black
    headers["Result"] = result_of(view)
    headers["UTCDate"] = headers["Date"]
    headers["UTCTime"] = time.strftime("%H:%M:%S", created)
    headers["TimeControl"] = _time_control(view)
    headers["Termination"] = _TERMINATION.get(view.status, "normal")
    if view.reason:
        headers["Reason"] = view.reason
    headers["GameId"] = view.id

    node: chess.pgn.GameNode = game
    for move in moves:
        node = node.add_variation(chess.Move.from_uci(move.uci))
        mover = color_to_move(move.ply - 1)
        left = move.white_ms if mover == "white" else move.black_ms
        if view.clock is not None and left is not None:
            node.set_clock(left / 1000)

    exporter = chess.pgn.StringExporter(headers=True, variations=False, comments=True)

    return game.accept(exporter) + "\n"


def _time_control(view: GameView) -> str:
    """Return ``initial+increment`` in seconds, or ``-`` without a clock."""
    if view.clock is None or view.initial_ms is None:
        return "-"

    return f"{view.initial_ms // 1000}+{view.clock.increment_ms // 1000}"
