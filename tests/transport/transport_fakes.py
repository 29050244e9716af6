"""
A small in-memory GameService with real chess rules, for the transport tests.

It stands in for a node: python-chess decides legality, each game keeps its
events and subscribers, and knobs let a test make the node overloaded, not
ready, or flood a subscriber. It is not the game actor and proves nothing
about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import chess

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameEnded,
    GameEvent,
    MovePlayed,
    Status,
)
from livegame.actors.game.messages import (
    Abort,
    AcceptDraw,
    ClaimDraw,
    ClockView,
    DeclineDraw,
    GameMessage,
    GameSummary,
    GameView,
    GetGame,
    GetMoves,
    MoveResult,
    OfferDraw,
    PlayMove,
    Resign,
    Subscribed,
    Subscriber,
)
from livegame.errors import (
    Conflict,
    Forbidden,
    GameNotFound,
    GameOver,
    IllegalMove,
    NotYourTurn,
    Overloaded,
    StalePly,
)
from livegame.transport import (
    BoardView,
    CheckResult,
    JwtVerifier,
    Principal,
    WebSocketConfig,
    mint_token,
    serve_websocket,
)
from livegame.transport.service import GamePage, GameQuery

START_MS = 1_700_000_000_000


@dataclass
class FakeGame:
    id: str
    white: str
    black: str
    clock: tuple[int, int] | None
    board: chess.Board = field(default_factory=chess.Board)
    moves: list[MovePlayed] = field(default_factory=list)
    seq: int = 1
    status: Status = "started"
    winner: Color | None = None
    reason: str | None = None
    draw_offer: Color | None = None
    subscribers: list[Subscriber] = field(default_factory=list)

    def color_of(self, player: str) -> Color:
        if player not in (self.white, self.black):
            raise Forbidden(f"{player} does not play in {self.id}")

        return "white" if player == self.white else "black"

    def clock_view(self) -> ClockView | None:
        if self.clock is None:
            return None

        running = self.turn() if self.moves and self.status == "started" else None
        initial_ms, increment_ms = self.clock[0] * 1000, self.clock[1] * 1000

        return ClockView(initial_ms, initial_ms, increment_ms, running)

    def turn(self) -> Color:
        return "white" if self.board.turn == chess.WHITE else "black"

    def summary(self) -> GameSummary:
        """The game as a listing shows it: its view, less moves and clock state."""
        view = self.view()
        clock = view.clock
        return GameSummary(
            id=view.id,
            white=view.white,
            black=view.black,
            status=view.status,
            winner=view.winner,
            reason=view.reason,
            fen=view.fen,
            ply=view.ply,
            white_ms=None if clock is None else clock.white_ms,
            black_ms=None if clock is None else clock.black_ms,
            initial_ms=view.initial_ms,
            increment_ms=0 if clock is None else clock.increment_ms,
            created_at_ms=view.created_at_ms,
            updated_at_ms=view.updated_at_ms,
        )

    def view(self) -> GameView:
        return GameView(
            id=self.id,
            white=self.white,
            black=self.black,
            status=self.status,
            winner=self.winner,
            reason=self.reason,
            fen=self.board.fen(),
            ply=len(self.moves),
            turn=self.turn(),
            moves=tuple(move.uci for move in self.moves),
            clock=self.clock_view(),
            draw_offer=self.draw_offer,
            created_at_ms=START_MS,
            updated_at_ms=START_MS + self.seq,
            seq=self.seq,
            initial_ms=None if self.clock is None else self.clock[0] * 1000,
        )


class FakeGames:
    """A GameService over a dict of games."""

    def __init__(self) -> None:
        self.games: dict[str, FakeGame] = {}
        self.overloaded = False
        self.checks: dict[str, CheckResult] = {
            "postgres": (True, ""),
            "redis": (True, ""),
        }
        self.killed: list[str] = []
        self.asks = 0

    # Knobs and helpers for tests.

    def new_game(self, white: str = "alice", black: str = "bob") -> FakeGame:
        game = FakeGame(f"g{len(self.games) + 1}", white, black, (300, 2))
        self.games[game.id] = game
        return game

    def flood(self, game_id: str, count: int) -> None:
        """Deliver ``count`` draw offers and declines at once, as a hot game would."""
        game = self.games[game_id]
        for n in range(count):
            game.seq += 1
            kind = DrawOffered if n % 2 == 0 else DrawDeclined
            self._publish(game, [kind(game.id, game.seq, len(game.moves), "white", 0)])

    # GameService.

    async def create_game(
        self, white: str, black: str, clock: tuple[int, int] | None, by: Principal
    ) -> GameView:
        self._check_load()
        game = FakeGame(f"g{len(self.games) + 1}", white, black, clock)
        self.games[game.id] = game
        return game.view()

    async def ask(self, game_id: str, message: GameMessage, timeout: float) -> object:
        self._check_load()
        self.asks += 1
        game = self._game(game_id)
        if isinstance(message, GetGame):
            return game.view()

        if isinstance(message, GetMoves):
            return tuple(game.moves)

        if isinstance(message, PlayMove):
            return self._play(game, message)

        return self._act(game, message)

    async def subscribe(
        self, game_id: str, subscriber: Subscriber, since: int | None
    ) -> Subscribed:
        self._check_load()
        game = self._game(game_id)
        if subscriber not in game.subscribers:
            game.subscribers.append(subscriber)

        missed = tuple(m for m in game.moves if since is not None and m.ply > since)
        return Subscribed(game.view(), missed)

    async def unsubscribe(self, game_id: str, subscriber: Subscriber) -> None:
        game = self.games.get(game_id)
        if game is not None and subscriber in game.subscribers:
            game.subscribers.remove(subscriber)

    async def board(self, game_id: str) -> BoardView:
        self._check_load()
        return BoardView.of(self._game(game_id).view())

    async def list_games(self, query: GameQuery) -> GamePage:
        """Games in order of creation, newest first: here, by their number."""
        self._check_load()
        newest_first = sorted(
            self.games.values(), key=lambda game: int(game.id[1:]), reverse=True
        )
        if query.before is not None:
            ids = [game.id for game in newest_first]
            after = ids.index(query.before) + 1 if query.before in ids else len(ids)
            newest_first = newest_first[after:]
        found = [
            game.summary()
            for game in newest_first
            if query.player in (game.white, game.black)
            and (query.statuses is None or game.status in query.statuses)
        ]
        page = tuple(found[: query.limit])
        more = len(found) > query.limit

        return GamePage(page, page[-1].id if more else None)

    async def ready(self) -> Mapping[str, CheckResult]:
        return dict(self.checks)

    def actors_snapshot(self) -> Sequence[Mapping[str, Any]]:
        games = [{"path": f"/user/games/{g}", "kind": "game"} for g in self.games]
        return [{"path": "/", "kind": "root"}, *games]

    def actor(self, path: str) -> Mapping[str, Any] | None:
        return next((a for a in self.actors_snapshot() if a["path"] == path), None)

    async def kill(self, path: str) -> bool:
        if self.actor(path) is None:
            return False

        self.killed.append(path)
        return True

    async def cluster(self) -> Mapping[str, Any]:
        return {"node": "test-node", "nodes": [{"id": "test-node", "lease_ms": 5000}]}

    # The rules, small.

    def _check_load(self) -> None:
        if self.overloaded:
            raise Overloaded("the game's mailbox is full")

    def _game(self, game_id: str) -> FakeGame:
        try:
            return self.games[game_id]
        except KeyError:
            raise GameNotFound(f"no game {game_id}") from None

    def _play(self, game: FakeGame, command: PlayMove) -> MoveResult:
        color = game.color_of(command.player)
        self._check_started(game)
        if command.ply != len(game.moves):
            raise StalePly(f"the game is at ply {len(game.moves)}, not {command.ply}")

        if color != game.turn():
            raise NotYourTurn(f"it is {game.turn()}'s turn")

        try:
            move = game.board.parse_uci(command.uci)
        except ValueError as exc:
            raise IllegalMove(f"{command.uci} is illegal here") from exc

        san = game.board.san(move)
        game.board.push(move)
        game.seq += 1
        clock = game.clock_view()
        white_ms = clock.white_ms if clock else None
        black_ms = clock.black_ms if clock else None
        played = MovePlayed(
            game.id,
            game.seq,
            len(game.moves) + 1,
            command.uci,
            san,
            game.board.fen(),
            white_ms,
            black_ms,
            START_MS + game.seq,
        )
        game.moves.append(played)
        events: list[GameEvent] = [played]
        if game.board.is_checkmate():
            events.append(self._end(game, "mate", color, "checkmate"))

        self._publish(game, events)
        return MoveResult(
            played.ply,
            played.uci,
            san,
            played.fen,
            game.status,
            game.winner,
            game.reason,
            game.clock_view(),
        )

    def _act(self, game: FakeGame, command: GameMessage) -> GameView:
        if not isinstance(
            command, Resign | OfferDraw | AcceptDraw | DeclineDraw | ClaimDraw | Abort
        ):
            raise TypeError(f"the fake does not handle {command!r}")

        color = game.color_of(command.player)
        self._check_started(game)
        other: Color = "black" if color == "white" else "white"
        events: list[GameEvent] = []
        if isinstance(command, Resign):
            events.append(self._end(game, "resign", other, "resignation"))
        elif isinstance(command, OfferDraw):
            game.seq += 1
            game.draw_offer = color
            events.append(DrawOffered(game.id, game.seq, len(game.moves), color, 0))
        elif isinstance(command, AcceptDraw):
            if game.draw_offer != other:
                raise Conflict("there is no draw offer to accept")
            events.append(self._end(game, "draw", None, "agreement"))
        elif isinstance(command, DeclineDraw):
            if game.draw_offer != other:
                raise Conflict("there is no draw offer to decline")
            game.seq += 1
            game.draw_offer = None
            events.append(DrawDeclined(game.id, game.seq, len(game.moves), color, 0))
        elif isinstance(command, ClaimDraw):
            if not game.board.can_claim_draw():
                raise Conflict("no draw can be claimed in this position")
            events.append(self._end(game, "draw", None, "threefold_repetition"))
        else:
            if len(game.moves) >= 2:
                raise Conflict("only a game with fewer than two moves can be aborted")
            events.append(self._end(game, "aborted", None, "aborted"))

        self._publish(game, events)
        return game.view()

    def _check_started(self, game: FakeGame) -> None:
        if game.status != "started":
            raise GameOver(f"game {game.id} has ended ({game.status})")

    def _end(
        self, game: FakeGame, status: Status, winner: Color | None, reason: str
    ) -> GameEnded:
        game.seq += 1
        game.status, game.winner, game.reason = status, winner, reason
        game.draw_offer = None
        return GameEnded(
            game.id, game.seq, len(game.moves), status, winner, reason, None, None, 0
        )

    def _publish(self, game: FakeGame, events: list[GameEvent]) -> None:
        for subscriber in list(game.subscribers):
            for event in events:
                subscriber.deliver(event)


SECRET = "test-secret-that-is-long-enough-for-hs256"


def token_for(user: str, *roles: str, ttl_seconds: int = 600) -> str:
    return mint_token(SECRET, user, roles=roles, ttl_seconds=ttl_seconds)


def bearer(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user, *roles)}"}


class RecordingObserver:
    """A TransportObserver that remembers what it was told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int]] = []
        self.closed_codes: list[int] = []
        self.rejected: list[str] = []
        self.opened = 0
        self.resumed = 0
        # Set when a WebSocket connection has finished closing.
        self.closed = asyncio.Event()

    def request_finished(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        assert seconds >= 0
        self.requests.append((method, route, status))

    def connection_opened(self) -> None:
        self.opened += 1

    def connection_closed(self, code: int) -> None:
        self.closed_codes.append(code)
        self.closed.set()

    def connection_resumed(self) -> None:
        self.resumed += 1

    def frame_rejected(self, code: str) -> None:
        self.rejected.append(code)


@contextlib.asynccontextmanager
async def running_websocket(
    games: FakeGames, config: WebSocketConfig, observer: RecordingObserver
) -> AsyncIterator[str]:
    """Serve WebSockets on a free loopback port; yield the URL of the endpoint."""
    config = dataclasses.replace(config, host="127.0.0.1", port=0)
    server = await serve_websocket(
        games, JwtVerifier(SECRET), config, observer=observer
    )
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}{config.path}"
    finally:
        server.close()
        await server.wait_closed()
