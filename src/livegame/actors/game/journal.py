"""
The game actor's durable log.

A game actor appends the events of each change and waits until the journal
says they are durable before it acknowledges anything. On (re)activation it
loads the game's history and replays it. PostgreSQL implements this protocol
in :mod:`livegame.persistence`; :class:`InMemoryJournal` serves tests and
benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
)
from livegame.errors import Conflict, Fenced, GameNotFound


@dataclass(frozen=True, slots=True)
class GameHistory:
    """Everything needed to rebuild a game: its creation, moves and ending."""

    created: GameCreated
    moves: tuple[MovePlayed, ...]
    ended: GameEnded | None
    # The side whose draw offer is pending, if any.
    draw_offer: Color | None
    # The seq of the last event journaled for this game.
    last_seq: int


class Journal(Protocol):
    """Durable storage of game events, fenced by owner epoch."""

    async def create(self, event: GameCreated) -> None:
        """Store a new game; return when durable. Raises Conflict if it exists."""

    async def load(self, game_id: str) -> GameHistory | None:
        """Return the game's history, or None for an unknown game."""

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        """
        Append events of one change; return when durable.

        Raises:
            Fenced: ``epoch`` is older than the game's owner epoch.
            Conflict: an event's seq or ply is already taken.
        """


@dataclass(slots=True)
class _StoredGame:
    created: GameCreated
    events: list[GameEvent] = field(default_factory=list)
    epoch: int = 0


class InMemoryJournal:
    """A journal in a dict: durable for as long as the process lives."""

    def __init__(self) -> None:
        self._games: dict[str, _StoredGame] = {}
        # Appends in the order they were made durable, for tests.
        self.appended: list[GameEvent] = []

    def __repr__(self) -> str:
        return f"<InMemoryJournal games={len(self._games)}>"

    async def create(self, event: GameCreated) -> None:
        if event.game_id in self._games:
            raise Conflict("game exists", game_id=event.game_id)
        self._games[event.game_id] = _StoredGame(event)
        self.appended.append(event)

    async def load(self, game_id: str) -> GameHistory | None:
        stored = self._games.get(game_id)
        if stored is None:
            return None

        moves = tuple(e for e in stored.events if isinstance(e, MovePlayed))
        ended = next((e for e in stored.events if isinstance(e, GameEnded)), None)
        draw_offer: Color | None = None
        for e in stored.events:
            if isinstance(e, DrawOffered):
                draw_offer = e.by
            elif isinstance(e, DrawDeclined | MovePlayed | GameEnded):
                draw_offer = None
        last_seq = stored.events[-1].seq if stored.events else stored.created.seq

        return GameHistory(stored.created, moves, ended, draw_offer, last_seq)

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        stored = self._games.get(game_id)
        if stored is None:
            raise GameNotFound("unknown game", game_id=game_id)
        if epoch < stored.epoch:
            raise Fenced("a newer owner holds the game", game_id=game_id)

        last_seq = stored.events[-1].seq if stored.events else stored.created.seq
        for offset, event in enumerate(events, start=1):
            if event.seq != last_seq + offset:
                raise Conflict("seq taken", game_id=game_id, seq=event.seq)

        stored.epoch = epoch
        stored.events.extend(events)
        self.appended.extend(events)

    def fence(self, game_id: str, epoch: int) -> None:
        """Raise the game's owner epoch, as a new owner's claim would."""
        self._games[game_id].epoch = epoch

    def events(self, game_id: str) -> list[GameEvent]:
        """Return every journaled event of a game after its creation."""
        return list(self._games[game_id].events)
