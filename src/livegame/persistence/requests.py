"""
What the writer is asked to make durable, and what it reports back.

A :class:`PendingWrite` pairs a request with the future its caller awaits;
the writer resolves the future only after the request's transaction has
committed, or fails it with the reason it was refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from livegame.actors.game.events import GameCreated, GameEvent
from livegame.persistence.state import BoardState


@dataclass(frozen=True, slots=True)
class CreateGame:
    """Store a new game; refused with Conflict if the id is taken."""

    event: GameCreated

    @property
    def game_id(self) -> str:
        return self.event.game_id


@dataclass(frozen=True, slots=True)
class AppendEvents:
    """Append the events of one change, fenced by the owner epoch."""

    game_id: str
    epoch: int
    events: tuple[GameEvent, ...]
    # The W3C traceparent of the traced step that asked for the append; the
    # relay publishes the events inside that trace. None when not traced.
    trace_context: str | None = None


WriteRequest = CreateGame | AppendEvents


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A request on its way to the writer, with the future its caller awaits."""

    request: WriteRequest
    done: asyncio.Future[None] = field(compare=False, repr=False)

    @property
    def game_id(self) -> str:
        return self.request.game_id


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What one committed transaction changed."""

    # The state after the batch of every game it created or changed.
    states: Mapping[str, BoardState]
    # How many outbox rows it wrote: the relay has work when this is positive.
    outbox_rows: int


class WriteSink(Protocol):
    """Where a journal sends its writes: the committer or the writer's ref."""

    def send(self, write: PendingWrite) -> None:
        """
        Queue ``write`` and return at once.

        Raises:
            Overloaded: too many writes wait already; nothing was queued.
            StorageError: the writer has stopped.
        """


class CommitListener(Protocol):
    """Told about each committed batch, e.g. the relay and the Redis cache."""

    def committed(self, batch: CommittedBatch) -> None:
        """Take note of a commit; must not block or raise."""
