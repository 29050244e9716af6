"""
Messages a game actor receives, and the replies it gives.

Point of view: the game actor's. Commands come from players through the
transport layer (``player`` is the authenticated user id); replies are
immutable views. An ask whose command is refused raises the matching
:mod:`livegame.errors` error (409, 422, ...) at the asker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from livegame.actors.game.events import (
    Color,
    GameEvent,
    MovePlayed,
    Status,
    color_to_move,
)


class Subscriber(Protocol):
    """A watcher of one game: a WebSocket connection, a fan-out bridge..."""

    def deliver(self, event: GameEvent) -> None:
        """Take one event; must not block. Events arrive in seq order."""


@dataclass(frozen=True, slots=True)
class ClockView:
    white_ms: int
    black_ms: int
    increment_ms: int
    # The side whose clock runs now; None before the first move or at the end.
    running: Color | None


def stored_clock(
    white_ms: int | None,
    black_ms: int | None,
    increment_ms: int,
    status: Status,
    ply: int,
) -> ClockView | None:
    """
    Return the clock of a stored state: the times after its last event.

    A clock runs from the second move on, for the side to move, until the
    end; None for a game without a clock.
    """
    if white_ms is None or black_ms is None:
        return None
    running = color_to_move(ply) if status == "started" and ply >= 2 else None

    return ClockView(white_ms, black_ms, increment_ms, running)


@dataclass(frozen=True, slots=True)
class GameView:
    id: str
    white: str
    black: str
    status: Status
    winner: Color | None
    reason: str | None
    fen: str
    ply: int
    turn: Color
    moves: tuple[str, ...]
    clock: ClockView | None
    draw_offer: Color | None
    created_at_ms: int
    updated_at_ms: int
    # The seq of the last event, so watchers can order views and events.
    seq: int
    # Each side's time at the start; None for a game without a clock.
    initial_ms: int | None = None


@dataclass(frozen=True, slots=True)
class GameSummary:
    """One game in a list of games: its state after its last event."""

    id: str
    white: str
    black: str
    status: Status
    winner: Color | None
    reason: str | None
    fen: str
    ply: int
    # Each side's time after the last event; None for a game without a clock.
    white_ms: int | None
    black_ms: int | None
    initial_ms: int | None
    increment_ms: int
    created_at_ms: int
    updated_at_ms: int

    @property
    def turn(self) -> Color:
        return color_to_move(self.ply)


@dataclass(frozen=True, slots=True)
class MoveResult:
    ply: int
    uci: str
    san: str
    fen: str
    status: Status
    winner: Color | None
    reason: str | None
    clock: ClockView | None


# Commands. Each reply is given in the comment after the class name.


@dataclass(frozen=True, slots=True)
class PlayMove:  # -> MoveResult
    player: str
    uci: str
    # The ply the player has seen: the first move is sent with ply 0.
    ply: int
    # The sender's trace context (W3C headers), so the move's spans join the
    # request's trace; None when the request is not traced.
    trace: Mapping[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Resign:  # -> GameView
    player: str


@dataclass(frozen=True, slots=True)
class OfferDraw:  # -> GameView
    player: str


@dataclass(frozen=True, slots=True)
class AcceptDraw:  # -> GameView
    player: str


@dataclass(frozen=True, slots=True)
class DeclineDraw:  # -> GameView
    player: str


@dataclass(frozen=True, slots=True)
class ClaimDraw:  # -> GameView
    player: str


@dataclass(frozen=True, slots=True)
class Abort:  # -> GameView
    player: str


GameAction = Resign | OfferDraw | AcceptDraw | DeclineDraw | ClaimDraw | Abort


@dataclass(frozen=True, slots=True)
class GetGame:  # -> GameView
    pass


@dataclass(frozen=True, slots=True)
class GetMoves:  # -> tuple[MovePlayed, ...]
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:  # -> Subscribed
    subscriber: Subscriber
    # Deliver moves after this ply; None for none.
    since: int | None = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    view: GameView
    # The moves with ply > since, in order, delivered with the reply.
    missed: tuple[MovePlayed, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:  # -> None
    subscriber: Subscriber


GameMessage = PlayMove | GameAction | GetGame | GetMoves | Subscribe | Unsubscribe
