"""
What happens to a game, as durable facts.

The rules core produces these events; the game actor appends them to its
journal before acknowledging anything, subscribers receive them in order, and
the persistence layer turns each into rows and an outbox message. ``seq``
numbers every event of one game from 1 without gaps, so ``(game_id, seq)`` is
a stable event id that consumers use to drop duplicates.

Times are integer milliseconds since the Unix epoch; clocks are integer
milliseconds left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Color = Literal["white", "black"]
Status = Literal["started", "mate", "stalemate", "resign", "timeout", "draw", "aborted"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ENDED_STATUSES: Final[tuple[Status, ...]] = tuple(s for s in STATUSES if s != "started")


def color_to_move(ply: int) -> Color:
    """Return the side to move after ``ply`` plies."""
    return "white" if ply % 2 == 0 else "black"


@dataclass(frozen=True, slots=True)
class GameCreated:
    game_id: str
    seq: int
    white: str
    black: str
    # None for a game without a clock.
    initial_ms: int | None
    increment_ms: int
    at_ms: int
    type: Literal["game_created"] = "game_created"
    ply: int = 0


@dataclass(frozen=True, slots=True)
class MovePlayed:
    game_id: str
    seq: int
    # The ply reached by this move: the first move has ply 1.
    ply: int
    uci: str
    san: str
    # The position after the move.
    fen: str
    white_ms: int | None
    black_ms: int | None
    at_ms: int
    type: Literal["move_played"] = "move_played"


@dataclass(frozen=True, slots=True)
class DrawOffered:
    game_id: str
    seq: int
    ply: int
    by: Color
    at_ms: int
    type: Literal["draw_offered"] = "draw_offered"


@dataclass(frozen=True, slots=True)
class DrawDeclined:
    game_id: str
    seq: int
    ply: int
    by: Color
    at_ms: int
    type: Literal["draw_declined"] = "draw_declined"


@dataclass(frozen=True, slots=True)
class GameEnded:
    game_id: str
    seq: int
    ply: int
    status: Status
    winner: Color | None
    # Why: "checkmate", "resignation", "agreement", "threefold_repetition",
    # "fifty_moves", "fivefold_repetition", "seventy_five_moves",
    # "insufficient_material", "stalemate", "timeout", "aborted", and
    # "timeout_vs_insufficient_material" (a flag fell against a side that
    # could not have mated: a draw).
    reason: str
    white_ms: int | None
    black_ms: int | None
    at_ms: int
    type: Literal["game_ended"] = "game_ended"


GameEvent = GameCreated | MovePlayed | DrawOffered | DrawDeclined | GameEnded


def event_id(event: GameEvent) -> str:
    """Return the stable id consumers use to drop duplicate deliveries."""
    return f"{event.game_id}:{event.seq}"
