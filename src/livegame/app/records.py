"""Real game records, as UCI move lists, for benchmarks and tests."""

from __future__ import annotations

import functools
import io
from importlib.resources import files

import chess.pgn


@functools.cache
def game_records() -> tuple[tuple[str, ...], ...]:
    """Return the move lists of the bundled games, each ending in mate."""
    text = files("livegame.app").joinpath("data/games.pgn").read_text("utf-8")
    handle = io.StringIO(text)
    records = []
    while (game := chess.pgn.read_game(handle)) is not None:
        records.append(tuple(move.uci() for move in game.mainline_moves()))

    return tuple(records)
