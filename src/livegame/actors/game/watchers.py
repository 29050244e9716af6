"""
The subscribers of one game, kept where a crash of its actor cannot lose them.

A game actor delivers its events through :class:`Watchers`; the object lives
in the factory that makes the game's actors (see
:class:`~livegame.actors.game.actor.GameActors`), so a restarted actor finds
the same subscribers and the seq of the last event they were sent, and sends
them whatever the journal holds beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from livegame.actors.game.events import GameEvent
from livegame.actors.game.messages import Subscriber
from livegame.actors.game.rules import GameState

log = structlog.get_logger("livegame.actors.game")


class Watchers:
    """
    The subscribers of one game, and the seq of the last event they were sent.

    Kept apart from the actor instance so that they outlive a restart; a new
    incarnation sends them whatever the journal holds beyond that seq.
    """

    __slots__ = ("_owner", "_subscribers", "game_id", "seq")

    def __init__(self, game_id: str, owner: dict[str, Watchers] | None = None) -> None:
        self.game_id = game_id
        # Keyed by identity: subscribing twice must not deliver twice.
        self._subscribers: dict[int, Subscriber] = {}
        # The seq of the last event delivered; 0 before the first load.
        self.seq = 0
        # The registry that holds this object, to leave it once unused.
        self._owner = owner

    def __repr__(self) -> str:
        return f"<Watchers {self.game_id} subscribers={len(self)} seq={self.seq}>"

    def __len__(self) -> int:
        return len(self._subscribers)

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers[id(subscriber)] = subscriber

    def remove(self, subscriber: Subscriber) -> None:
        self._subscribers.pop(id(subscriber), None)

    def publish(self, events: Sequence[GameEvent]) -> None:
        """Deliver ``events`` in order to every subscriber; drop broken ones."""
        if not self._subscribers:
            if events:
                self.seq = events[-1].seq
            return

        for event in events:
            for key, subscriber in list(self._subscribers.items()):
                try:
                    subscriber.deliver(event)
                except Exception as error:
                    # A watcher must never break the game it watches.
                    del self._subscribers[key]
                    log.warning(
                        "subscriber_dropped",
                        game_id=self.game_id,
                        subscriber=repr(subscriber),
                        error=repr(error),
                    )
            self.seq = event.seq

    def catch_up(self, state: GameState) -> None:
        """Send the moves and ending a crash kept from the subscribers."""
        if self._subscribers and self.seq < state.seq:
            missed: list[GameEvent] = [m for m in state.moves if m.seq > self.seq]
            if state.ended is not None and state.ended.seq > self.seq:
                missed.append(state.ended)
            self.publish(missed)
        self.seq = state.seq

    def release(self) -> None:
        """Leave the registry if nobody watches any more."""
        owner = self._owner
        if not self._subscribers and owner and owner.get(self.game_id) is self:
            del owner[self.game_id]
