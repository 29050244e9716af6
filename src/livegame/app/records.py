"""Real game records, as UCI move lists, for benchmarks and tests."""

from __future__ import annotations

import functools
from importlib.resources import files

import chess.pgn


@functools.cache
def game_records() -> tuple[tuple[str, ...], ...]:
    """Return the move lists of the bundled games, each ending in mate."""
    text = files("livegame.app").joinpath("data/games.pgn").open(encoding="utf-8")
    records = []
    with text:
        while (game := chess.pgn.read_game(text)) is not None:
            records.append(tuple(move.uci() for move in game.mainline_moves()))

    return tuple(records)
