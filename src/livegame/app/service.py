"""
The node as the transport layer sees it: :class:`NodeService`.

It creates games, routes each command to the game's actor (activating it
here after winning the game's placement), reads cached boards, and answers
the operators' questions about the actor tree and the cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from livegame.actors import ActorRef, ActorStopped, ActorSystem
from livegame.actors.game.events import STATUSES
from livegame.actors.game.journal import Journal
from livegame.actors.game.messages import (
    GameMessage,
    GameSummary,
    GameView,
    GetGame,
    MoveResult,
    PlayMove,
    Subscribe,
    Subscribed,
    Subscriber,
    Unsubscribe,
)
from livegame.actors.game.rules import GameState, create_game
from livegame.actors.system import ActorSnapshot
from livegame.errors import (
    Conflict,
    Fenced,
    Forbidden,
    GameNotFound,
    GameOver,
    IllegalMove,
    LiveGameError,
    Overloaded,
    StorageError,
)
from livegame.supervisor import (
    ChildSpec,
    Games,
    RestartType,
    StartChild,
    StopChild,
    check_game_id,
)
from livegame.supervisor.placement import Elsewhere, Placement
from livegame.telemetry.metrics import observe_move
from livegame.telemetry.tracing import message_context
from livegame.transport.auth import SERVICE, Principal
from livegame.transport.connection import Connection, ConnectionActor
from livegame.transport.peer import WatchFromPeer
from livegame.transport.service import (
    BoardView,
    CheckResult,
    GamePage,
    GameQuery,
    JsonMapping,
)

if TYPE_CHECKING:
    from livegame.app.peers import PeerClient
    from livegame.persistence.fanout import EventFanout

log = structlog.get_logger("livegame.app")

# Placements tried for one command while its game moves between nodes.
_PLACEMENT_ATTEMPTS = 3
_ASK_TIMEOUT = 5.0
_CONNECTIONS = "/user/connections"
# Requests and events queued for one WebSocket connection.
_CONNECTION_MAILBOX = 512
# The move counter's result for a move that ended the game.
_MOVE_RESULTS: dict[str, Any] = {
    "mate": "checkmate",
    "stalemate": "stalemate",
    "draw": "draw",
}

# Readiness checks: name -> coroutine raising on failure.
Check = Callable[[], Awaitable[object]]
BoardReader = Callable[[str], Awaitable[BoardView | None]]
# (player, statuses, limit, before) -> that player's games, newest first.
GameLister = Callable[
    [str, Collection[str], int, str | None], Awaitable[Sequence[GameSummary]]
]


def new_game_id() -> str:
    """Return a fresh, URL-safe game id."""
    return secrets.token_urlsafe(9)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _flatten(snapshot: ActorSnapshot) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    stack = [snapshot]
    while stack:
        node = stack.pop()
        row = node.to_dict()
        row["children"] = [child.path for child in node.children]
        rows.append(row)
        stack.extend(reversed(node.children))

    return rows


class NodeService:
    """
    The :class:`~livegame.transport.service.GameService` of one node.

    Args:
        system: the node's actor system; games live under ``/user/games``.
        journal: where games are created and loaded.
        placement: claims games for this node.
        epochs: filled with each claimed game's epoch, read by the game
            actor factory.
        checks: readiness checks by name.
        read_board: the cache's board of a game, or None on a miss.
        list_games: a player's games from storage, newest first.
        cluster_info: what ``GET /admin/cluster`` shows.
        peers: forwards commands to the node serving a game; without it a
            game served elsewhere is not found here.
        fanout: publishes and follows game events across nodes.
    """

    def __init__(
        self,
        system: ActorSystem,
        journal: Journal,
        placement: Placement,
        epochs: dict[str, int],
        *,
        checks: Mapping[str, Check],
        read_board: BoardReader,
        list_games: GameLister,
        cluster_info: Callable[[], Awaitable[JsonMapping]],
        peers: PeerClient | None = None,
        fanout: EventFanout | None = None,
    ) -> None:
        self._system = system
        self._games = Games(system)
        self._journal = journal
        self._placement = placement
        self._epochs = epochs
        self._checks = dict(checks)
        self._read_board = read_board
        self._list_games = list_games
        self._cluster_info = cluster_info
        self._peers = peers
        self._fanout = fanout
        # One placement at a time per game on this node.
        self._placing: dict[str, anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"<NodeService {self._placement.node_id} games={self._games.active()}>"

    @property
    def games(self) -> Games:
        return self._games

    # Games.

    async def create_game(
        self,
        white: str,
        black: str,
        clock: tuple[int, int] | None,
        by: Principal,
    ) -> GameView:
        if by.user_id not in (white, black) and SERVICE not in by.roles:
            raise Forbidden("only a player or a service may create a game")
        initial_ms, increment_ms = (None, 0)
        if clock is not None:
            initial_ms, increment_ms = clock[0] * 1000, clock[1] * 1000
        now = _now_ms()
        created = create_game(
            new_game_id(), white, black, initial_ms, increment_ms, now
        )
        await self._journal.create(created)
        log.info("game_created", game_id=created.game_id, white=white, black=black)

        return GameState(created).view(now)

    async def ask(self, game_id: str, message: GameMessage, timeout: float) -> object:
        if not isinstance(message, PlayMove):
            return await self._route(game_id, message, timeout)

        # A move: count it under its result and time it, on the node that
        # received it (a forwarded move is not counted again on its owner).
        trace = message_context()
        if trace is not None:
            message = dataclasses.replace(message, trace=trace)
        started = time.perf_counter()
        try:
            result = await self._route(game_id, message, timeout)
        except (IllegalMove, Conflict, Forbidden) as refused:
            flagged = isinstance(refused, GameOver) and "time" in refused.message
            observe_move(
                "timeout" if flagged else "invalid", time.perf_counter() - started
            )
            raise
        assert isinstance(result, MoveResult)
        observe_move(
            _MOVE_RESULTS.get(result.status, "valid"), time.perf_counter() - started
        )

        return result

    async def _route(self, game_id: str, message: Any, timeout: float) -> object:
        ref = self._games.local(game_id)
        if ref is not None:
            try:
                return await ref.ask(message, timeout)
            except (ActorStopped, Fenced):
                pass  # passivated or fenced since the look-up: place it again

        for _ in range(_PLACEMENT_ATTEMPTS):
            where = await self._locate(game_id)
            try:
                if not isinstance(where, Elsewhere):
                    return await where.ask(message, timeout)
                if self._peers is None:
                    raise GameNotFound(
                        f"game {game_id} is served elsewhere", game_id=game_id
                    )
                return await self._peers.ask(where.node_id, game_id, message, timeout)
            except (ActorStopped, Fenced):
                # The game moved while the command travelled; a fenced
                # command committed nothing, so it may run again.
                continue

        raise Overloaded(
            f"game {game_id} is moving between nodes; retry", game_id=game_id
        )

    async def ask_here(self, game_id: str, message: Any, timeout: float) -> object:
        """
        Run a command another node forwarded, on this node only.

        Raises:
            Fenced: this node does not serve the game (any more).
        """
        where = await self._locate(game_id)
        if isinstance(where, Elsewhere):
            raise Fenced(
                f"node {self._placement.node_id} does not serve game {game_id}",
                game_id=game_id,
            )
        if isinstance(message, WatchFromPeer):
            publisher = self._fanout.publisher(game_id) if self._fanout else None
            if publisher is None:
                raise GameNotFound("this node does not publish events", game_id=game_id)
            return await where.ask(Subscribe(publisher, message.since), timeout)

        return await where.ask(message, timeout)

    async def subscribe(
        self, game_id: str, subscriber: Subscriber, since: int | None
    ) -> Subscribed:
        where = await self._locate(game_id)
        if not isinstance(where, Elsewhere):
            reply = await where.ask(Subscribe(subscriber, since), _ASK_TIMEOUT)
            assert isinstance(reply, Subscribed)
            return reply
        if self._fanout is None or self._peers is None:
            raise GameNotFound(f"game {game_id} is served elsewhere", game_id=game_id)

        # Listen first, then ask for the state: an event published in
        # between is then seen twice at worst, and watchers drop repeats.
        await self._fanout.watch(game_id, subscriber)
        try:
            reply = await self._peers.ask(
                where.node_id, game_id, WatchFromPeer(since), _ASK_TIMEOUT
            )
        except LiveGameError:
            await self._fanout.unwatch(game_id, subscriber)
            raise
        assert isinstance(reply, Subscribed)

        return reply

    async def unsubscribe(self, game_id: str, subscriber: Subscriber) -> None:
        if self._fanout is not None and self._fanout.watching(game_id):
            await self._fanout.unwatch(game_id, subscriber)
        ref = self._games.local(game_id)
        if ref is not None:
            with contextlib.suppress(ActorStopped):
                await ref.ask(Unsubscribe(subscriber), _ASK_TIMEOUT)

    async def renew_watches(self) -> None:
        """Ask each watched game's node again to publish: it may have moved."""
        if self._fanout is None or self._peers is None:
            return
        for game_id in self._fanout.watched_games():
            try:
                where = await self._locate(game_id)
                if isinstance(where, Elsewhere):
                    await self._peers.ask(
                        where.node_id, game_id, WatchFromPeer(None), _ASK_TIMEOUT
                    )
            except LiveGameError as error:
                log.debug("watch_renewal_failed", game_id=game_id, error=error.code)

    def stop_publishing(self, game_id: str) -> None:
        """No node listens to this game's events any more: stop sending them."""
        if self._fanout is None:
            return
        publisher = self._fanout.forget_publisher(game_id)
        ref = self._games.local(game_id)
        if publisher is not None and ref is not None:
            with contextlib.suppress(LiveGameError):
                ref.tell(Unsubscribe(publisher))

    async def board(self, game_id: str) -> BoardView:
        check_game_id(game_id)
        try:
            board = await self._read_board(game_id)
        except StorageError as error:
            log.warning("board_cache_unavailable", game_id=game_id, error=str(error))
            board = None
        if board is not None:
            return board

        view = await self.ask(game_id, _GET_GAME, _ASK_TIMEOUT)
        assert isinstance(view, GameView)
        return BoardView.of(view)

    async def list_games(self, query: GameQuery) -> GamePage:
        # One more than asked, to know whether there is a next page.
        found = await self._list_games(
            query.player,
            query.statuses or STATUSES,
            query.limit + 1,
            query.before,
        )
        games = tuple(found[: query.limit])
        more = len(found) > query.limit

        return GamePage(games, games[-1].id if more else None)

    async def _locate(self, game_id: str) -> ActorRef[Any] | Elsewhere:
        """Return the game's local actor, placing it here if it is free."""
        ref = self._games.local(game_id)
        if ref is not None:
            return ref

        check_game_id(game_id)
        lock = self._placing.get(game_id)
        if lock is None:
            lock = self._placing[game_id] = anyio.Lock()
        try:
            async with lock:
                ref = self._games.local(game_id)
                if ref is not None:
                    return ref
                placed = await self._placement.place(game_id)
                if isinstance(placed, Elsewhere):
                    return placed
                self._epochs[game_id] = placed.epoch
                return await self._games.activate(game_id)
        finally:
            if not lock.statistics().tasks_waiting:
                self._placing.pop(game_id, None)

    # Connections.

    async def attach_connection(self, connection: Connection) -> None:
        """Run a WebSocket connection as an actor at ``/user/connections/<id>``."""
        spec = ChildSpec(
            connection.id,
            lambda: ConnectionActor(connection),
            restart=RestartType.TEMPORARY,
            capacity=_CONNECTION_MAILBOX,
        )
        ref = await self._system.ref(_CONNECTIONS).ask(StartChild(spec), _ASK_TIMEOUT)
        connection.attach(ref)

    async def detach_connection(self, connection: Connection) -> None:
        with contextlib.suppress(LiveGameError):
            await self._system.ref(_CONNECTIONS).ask(
                StopChild(connection.id), _ASK_TIMEOUT
            )

    # Operations.

    async def ready(self) -> Mapping[str, CheckResult]:
        results: dict[str, CheckResult] = {}
        for name, check in self._checks.items():
            try:
                with anyio.fail_after(2.0):
                    await check()
                results[name] = (True, "")
            except TimeoutError:
                results[name] = (False, "no answer within 2 s")
            except Exception as error:  # a failed check is an answer, not a crash
                results[name] = (False, f"{type(error).__name__}: {error}")

        return results

    def actors_snapshot(self) -> Sequence[JsonMapping]:
        return _flatten(self._system.snapshot())

    def actor(self, path: str) -> JsonMapping | None:
        cell = self._system._cells.get(path)
        if cell is None:
            return None
        return _flatten(self._system.snapshot(path))[0]

    async def kill(self, path: str) -> bool:
        if self._system.find(path) is None:
            return False
        self._system.kill(path, reason="killed through the admin endpoint")
        return True

    async def cluster(self) -> JsonMapping:
        return await self._cluster_info()


_GET_GAME = GetGame()
