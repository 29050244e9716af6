"""
The state of one WebSocket connection, with no I/O.

A :class:`Session` takes what arrives (client frames, game events, replies)
and decides what leaves: encoded frames in a bounded outbox, and at most one
close request. :mod:`livegame.transport.websocket` drives it from sockets;
an actor could drive it from a mailbox the same way.

Ordering: a watch of a game passes each event once, in ``seq`` order. While a
subscribe is in flight its events are held back, so the ``state`` frame comes
first; events already contained in that state are dropped afterwards. Moves
must follow each other ply by ply: a missing ply means a move was lost on the
way, so the session asks for a close and the client resumes from the last ply
it saw. Other events may be skipped upstream (a restarted game re-sends only
moves and the ending), so a gap in ``seq`` alone is no reason to close.

A game that has ended sends nothing more, so its watch ends with the ``end``
frame (or with the ``state`` of a game already over): the slot is free for
the next game, and :meth:`Session.take_finished` names the games to
unsubscribe from upstream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from livegame.actors.game.events import GameEnded, GameEvent, MovePlayed
from livegame.actors.game.messages import Subscribed
from livegame.errors import LiveGameError, RateLimited
from livegame.transport.codec import encode
from livegame.transport.errors import TooManySubscriptions, UnsupportedFrame
from livegame.transport.inbound import ClientFrame, parse_frame, rid_of
from livegame.transport.outbound import (
    Document,
    error_frame,
    event_frame,
    move_frame,
    pong_frame,
    state_frame,
)
from livegame.transport.ratelimit import Clock, RateLimit, TokenBucket

# Close codes; 4000-4999 are the application's (RFC 6455, section 7.4.2).
CLOSE_POLICY: Final = 1008
CLOSE_SLOW_CONSUMER: Final = 4008
CLOSE_OUT_OF_SYNC: Final = 4009


def _ignore(code: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CloseRequest:
    code: int
    reason: str


@dataclass(slots=True)
class _Watch:
    """One subscribed game."""

    # True while the subscribe reply is awaited; events wait in ``held``.
    pending: bool = True
    held: list[GameEvent] = field(default_factory=list)
    # The seq of the last event passed on, or contained in the state sent.
    last_seq: int = 0
    # The ply of the last move passed on, or of the state sent.
    ply: int = 0


class Session:
    """What one connection has seen, owes and may still do."""

    def __init__(
        self,
        *,
        capacity: int,
        rate: RateLimit,
        flood_strikes: int,
        max_subscriptions: int,
        clock: Clock = time.monotonic,
        on_refusal: Callable[[str], None] = _ignore,
    ) -> None:
        # Encoded frames waiting for the writer, oldest first.
        self._outbox: deque[bytes] = deque()
        self._capacity = capacity
        self._bucket = TokenBucket(rate, clock)
        # Rate-limited frames in a row; a frame let through resets it.
        self._strikes = 0
        self._flood_strikes = flood_strikes
        self._max_subscriptions = max_subscriptions
        self._watches: dict[str, _Watch] = {}
        # Games whose watch ended here, still to be unsubscribed upstream.
        self._finished: list[str] = []
        # Told the code of every error frame, e.g. to count rejected frames.
        self._on_refusal = on_refusal
        self.close_request: CloseRequest | None = None
        self.frames_in = 0
        self.frames_out = 0

    def __repr__(self) -> str:
        state = "closing" if self.close_request else "open"
        return (
            f"<Session {state} games={len(self._watches)} "
            f"outbox={len(self._outbox)}/{self._capacity}>"
        )

    @property
    def games(self) -> tuple[str, ...]:
        return tuple(self._watches)

    # Inbound.

    def receive(self, raw: str | bytes) -> ClientFrame | None:
        """Take one client frame; return it if it should be executed."""
        if self.close_request is not None:
            return None

        self.frames_in += 1
        if self._bucket.take() > 0:
            self._strike(raw)
            return None

        self._strikes = 0
        if isinstance(raw, bytes):
            self.refuse(UnsupportedFrame("send JSON in text frames"), None)
            return None

        try:
            return parse_frame(raw)
        except LiveGameError as exc:
            self.refuse(exc, rid_of(raw))
            return None

    def _strike(self, raw: str | bytes) -> None:
        self._strikes += 1
        if self._strikes > self._flood_strikes:
            # The replies owed so far still go out, then the close.
            self.request_close(
                CLOSE_POLICY, "flood: too many frames", drop_pending=False
            )
            return

        rid = rid_of(raw) if isinstance(raw, str) else None
        self.refuse(RateLimited("too many frames; slow down"), rid)

    # Replies to the client's requests.

    def reply(self, frame: Document) -> None:
        self._send(frame)

    def refuse(self, error: LiveGameError, rid: str | None) -> None:
        self._on_refusal(error.code)
        self._send(error_frame(error, rid))

    def pong(self, rid: str | None) -> None:
        self._send(pong_frame(rid))

    # Subscriptions.

    def begin_subscribe(self, game_id: str) -> None:
        """Hold the game's events back until :meth:`subscribed`."""
        if game_id not in self._watches:
            if len(self._watches) >= self._max_subscriptions:
                raise TooManySubscriptions(
                    f"at most {self._max_subscriptions} games per connection"
                )

            self._watches[game_id] = _Watch()

        self._watches[game_id].pending = True

    def subscribed(self, game_id: str, reply: Subscribed, rid: str | None) -> None:
        """Send the state, the missed moves, then the events held back."""
        watch = self._watches.get(game_id)
        if watch is None:
            # Only subscribe_failed forgets a pending watch, and then no reply
            # follows; a reply without a watch has no one to go to.
            return

        self._send(state_frame(reply.view, rid))
        for move in reply.missed:
            self._send(move_frame(move))

        watch.pending = False
        watch.last_seq = max(watch.last_seq, reply.view.seq)
        watch.ply = max(watch.ply, reply.view.ply)
        held, watch.held = watch.held, []
        for event in held:
            self.deliver(event)
        if reply.view.status != "started" and self._watches.get(game_id) is watch:
            self._finish(game_id)

    def unsubscribe(self, game_id: str) -> bool:
        """Stop watching a game; return whether it was watched."""
        return self._watches.pop(game_id, None) is not None

    @property
    def finishing(self) -> bool:
        """Whether some games' watches ended and wait to be unsubscribed."""
        return bool(self._finished)

    def take_finished(self) -> list[str]:
        """Return the games whose watch ended by itself since the last call."""
        finished, self._finished = self._finished, []
        return finished

    def _finish(self, game_id: str) -> None:
        del self._watches[game_id]
        self._finished.append(game_id)

    def subscribe_failed(
        self, game_id: str, error: LiveGameError, rid: str | None
    ) -> None:
        self._watches.pop(game_id, None)
        self.refuse(error, rid)

    def deliver(self, event: GameEvent) -> None:
        """Pass a game event on, in order and once; never blocks."""
        watch = self._watches.get(event.game_id)
        if watch is None or self.close_request is not None:
            return

        if watch.pending:
            self._hold(watch, event)
            return

        if event.seq <= watch.last_seq:
            return

        if isinstance(event, MovePlayed):
            if event.ply != watch.ply + 1:
                self.request_close(CLOSE_OUT_OF_SYNC, "missed moves; resubscribe")
                return

            watch.ply = event.ply

        watch.last_seq = event.seq
        frame = event_frame(event)
        if frame is not None:
            self._send(frame)
        if isinstance(event, GameEnded):
            self._finish(event.game_id)

    def _hold(self, watch: _Watch, event: GameEvent) -> None:
        if len(watch.held) >= self._capacity:
            self.request_close(CLOSE_SLOW_CONSUMER, "slow consumer; resubscribe")
            return

        watch.held.append(event)

    # Outbound.

    def _send(self, frame: Document) -> None:
        if self.close_request is not None:
            return

        if len(self._outbox) >= self._capacity:
            self.request_close(CLOSE_SLOW_CONSUMER, "slow consumer; resubscribe")
            return

        self._outbox.append(encode(frame))

    def next_frame(self) -> bytes | None:
        """Take the oldest frame to write, if any."""
        if not self._outbox:
            return None

        self.frames_out += 1

        return self._outbox.popleft()

    def request_close(
        self, code: int, reason: str, *, drop_pending: bool = True
    ) -> None:
        """
        Ask for a close with ``code``; nothing is queued after it.

        Frames already queued are dropped unless ``drop_pending`` is false;
        a client that reads too slowly resumes from its last ply instead.
        """
        if self.close_request is None:
            self.close_request = CloseRequest(code, reason)
            if drop_pending:
                self._outbox.clear()
