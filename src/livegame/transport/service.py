"""
The facade the transport layer talks to, whatever assembles the node.

HTTP handlers and WebSocket connections see a node only through
:class:`GameService`: they send game actor messages
(:mod:`livegame.actors.game.messages`) and get its replies, its errors
(:mod:`livegame.errors`) or :class:`~livegame.errors.Overloaded`. Whether the
game lives here or on another node, and how the actor tree is built, is the
implementation's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from livegame.actors.game.events import Color, Status
from livegame.actors.game.messages import (
    ClockView,
    GameMessage,
    GameSummary,
    GameView,
    Subscribed,
    Subscriber,
)
from livegame.transport.auth import Principal
from livegame.transport.errors import UnexpectedReply

_Reply = TypeVar("_Reply")

# One readiness check: (ok, reason); the reason is empty when ok.
CheckResult = tuple[bool, str]

# A JSON-ready mapping, as the admin routes return it.
JsonMapping = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BoardView:
    """The cheap state of a game, as a cache holds it."""

    id: str
    fen: str
    ply: int
    turn: Color
    status: Status
    winner: Color | None
    clock: ClockView | None

    @classmethod
    def of(cls, view: GameView) -> BoardView:
        """Cut a full game view down to its board."""
        return cls(
            view.id, view.fen, view.ply, view.turn, view.status, view.winner, view.clock
        )


@dataclass(frozen=True, slots=True)
class GameQuery:
    """Which of a player's games to list (``GET /api/games``)."""

    player: str
    # The statuses to include, or None for every game.
    statuses: frozenset[Status] | None = None
    limit: int = 20
    # Only games created before this one, for the next page.
    before: str | None = None


@dataclass(frozen=True, slots=True)
class GamePage:
    """A page of games, newest first, and the cursor of the next page."""

    games: tuple[GameSummary, ...]
    next: str | None


class GameService(Protocol):
    """
    What the transport layer needs from a node.

    Every coroutine may raise :class:`~livegame.errors.Overloaded` (a full
    mailbox, a timed-out ask) or :class:`~livegame.errors.StorageError`; game
    commands raise their rule errors (``StalePly``, ``NotYourTurn``,
    ``GameOver``, ``IllegalMove``, ``Forbidden``).
    """

    async def create_game(
        self,
        white: str,
        black: str,
        clock: tuple[int, int] | None,
        by: Principal,
    ) -> GameView:
        """Create and persist a game; ``clock`` is (initial, increment) seconds."""
        ...

    async def ask(self, game_id: str, message: GameMessage, timeout: float) -> object:
        """
        Send ``message`` to the game's actor and return its reply.

        Raises:
            GameNotFound: no such game.
            Overloaded: the mailbox is full or no reply came within ``timeout``.
        """
        ...

    async def subscribe(
        self, game_id: str, subscriber: Subscriber, since: int | None
    ) -> Subscribed:
        """
        Register ``subscriber`` for the game's events on whichever node owns it.

        Subscribing an already registered subscriber again must not make it
        receive events twice. Raises ``GameNotFound``.
        """
        ...

    async def unsubscribe(self, game_id: str, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber``; unknown pairs are ignored."""
        ...

    async def board(self, game_id: str) -> BoardView:
        """Return the cached board state, falling back to the game actor."""
        ...

    async def list_games(self, query: GameQuery) -> GamePage:
        """Return a page of a player's games, newest first, as stored."""
        ...

    async def ready(self) -> Mapping[str, CheckResult]:
        """Check each dependency (``postgres``, ``redis``...) now."""
        ...

    def actors_snapshot(self) -> Sequence[JsonMapping]:
        """Describe every actor of this node's tree, parents before children."""
        ...

    def actor(self, path: str) -> JsonMapping | None:
        """Describe the actor at ``path``, or None if there is none."""
        ...

    async def kill(self, path: str) -> bool:
        """Crash the actor at ``path`` for its supervisor to restore; False if none."""
        ...

    async def cluster(self) -> JsonMapping:
        """Describe the nodes, their leases and this node's identity."""
        ...

    # Optional: a node that runs each WebSocket connection as an actor has
    # ``attach_connection(connection)`` and ``detach_connection(connection)``;
    # the WebSocket edge calls them when a socket opens and closes.


async def ask_for(
    service: GameService,
    game_id: str,
    message: GameMessage,
    reply_type: type[_Reply],
    timeout: float,
) -> _Reply:
    """Ask a game and check that the reply has the type its message promises."""
    reply = await service.ask(game_id, message, timeout)
    if not isinstance(reply, reply_type):
        raise UnexpectedReply(
            f"{type(message).__name__} got {type(reply).__name__}, "
            f"not {reply_type.__name__}",
            game_id=game_id,
        )

    return reply
