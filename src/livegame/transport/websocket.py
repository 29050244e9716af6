"""
The WebSocket edge: the server, its handshake, and one connection per socket.

A :class:`Connection` runs a reader loop and a writer loop around a
:class:`~livegame.transport.session.Session`, and is the
:class:`~livegame.actors.game.messages.Subscriber` the games deliver to. The
reader executes one client request at a time, so replies keep request order;
the writer drains the session's bounded outbox. Point of view for message
names: the server's (see :mod:`inbound` and :mod:`outbound`).

Close codes: 1008 flood, 1009 frame too big (by websockets), 1011 internal
error, 4008 slow consumer, 4009 out of sync. After 4008 and 4009 the client
resubscribes with ``since`` set to the last ply it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import uuid
from collections.abc import Iterable
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from livegame.actors.game.events import GameEvent
from livegame.actors.game.messages import GameMessage, GameView, MoveResult, PlayMove
from livegame.errors import LiveGameError, Overloaded, Unauthorized
from livegame.transport.access import Players
from livegame.transport.auth import Principal, TokenVerifier, authenticate, bearer_token
from livegame.transport.codec import encode
from livegame.transport.config import WebSocketConfig
from livegame.transport.errors import RouteNotFound
from livegame.transport.inbound import (
    ActionFrame,
    ClientFrame,
    MoveFrame,
    PingFrame,
    SubscribeFrame,
)
from livegame.transport.observer import NullObserver, TransportObserver
from livegame.transport.outbound import ack_frame, game_json, move_result_json
from livegame.transport.service import GameService, ask_for
from livegame.transport.session import Session

log = structlog.get_logger(__name__)

CLOSE_INTERNAL_ERROR: Final = 1011

_Reply = TypeVar("_Reply")


class AuthenticatedConnection(ServerConnection):
    """A server connection that remembers who passed the handshake."""

    principal: Principal | None = None


class Connection:
    """One client socket: a session driven by a reader and a writer."""

    def __init__(
        self,
        socket: ServerConnection,
        principal: Principal,
        session: Session,
        edge: WebSocketEdge,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.principal = principal
        self.session = session
        self._socket = socket
        self._edge = edge
        # Set whenever the session has something for the writer to do.
        self._wake = asyncio.Event()
        # Set once the session asks for the socket to be closed.
        self._closing = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Connection {self.id} user={self.principal.user_id} {self.session!r}>"

    def deliver(self, event: GameEvent) -> None:
        self.session.deliver(event)
        self._poke()

    def _poke(self) -> None:
        self._wake.set()
        if self.session.close_request is not None:
            self._closing.set()

    async def run(self) -> None:
        """Serve the socket until the client leaves or the session closes it."""
        tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._write_loop()),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

            await asyncio.gather(*tasks, return_exceptions=True)
            await self._unsubscribe_all()

        self._check_failures(done)
        if (close := self.session.close_request) is not None:
            log.warning(
                "ws_connection_closing",
                connection=self.id,
                code=close.code,
                reason=close.reason,
            )
            await self._flush()
            await self._socket.close(close.code, close.reason)

    def _check_failures(self, done: Iterable[asyncio.Future[Any]]) -> None:
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                log.error("ws_connection_failed", connection=self.id, exc_info=error)
                self.session.request_close(CLOSE_INTERNAL_ERROR, "internal error")

    async def _read_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._socket:
                frame = self.session.receive(raw)
                if frame is not None:
                    await self._execute(frame)

                self._poke()
                if self.session.close_request is not None:
                    return

    async def _write_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while self.session.close_request is None:
                await self._wake.wait()
                self._wake.clear()
                await self._flush()

    async def _flush(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (frame := self.session.next_frame()) is not None:
                await self._socket.send(frame, text=True)

    async def _execute(self, frame: ClientFrame) -> None:
        try:
            await self._dispatch(frame)
        except LiveGameError as exc:
            self.session.refuse(exc, frame.rid)
        except Exception:
            log.exception("ws_request_failed", connection=self.id, frame=repr(frame))
            self.session.refuse(LiveGameError("internal error"), frame.rid)

    async def _dispatch(self, frame: ClientFrame) -> None:
        if isinstance(frame, PingFrame):
            self.session.pong(frame.rid)
        elif isinstance(frame, SubscribeFrame):
            await self._subscribe(frame)
        elif isinstance(frame, MoveFrame):
            await self._move(frame)
        else:
            await self._act(frame)

    async def _subscribe(self, frame: SubscribeFrame) -> None:
        self.session.begin_subscribe(frame.game)
        try:
            reply = await self._edge.service.subscribe(frame.game, self, frame.since)
        except LiveGameError as exc:
            self.session.subscribe_failed(frame.game, exc, frame.rid)
            if isinstance(exc, Overloaded):
                # A timed-out subscribe may still have registered us.
                await self._unsubscribe(frame.game)
            return

        self.session.subscribed(frame.game, reply, frame.rid)
        if frame.since is not None:
            self._edge.observer.connection_resumed()

    async def _move(self, frame: MoveFrame) -> None:
        await self._edge.players.check_player(frame.game, self.principal)
        command = PlayMove(self.principal.user_id, frame.move.uci, frame.move.ply)
        result = await self._ask(frame.game, command, MoveResult)
        self.session.reply(ack_frame(frame.game, frame.rid, move_result_json(result)))

    async def _act(self, frame: ActionFrame) -> None:
        await self._edge.players.check_player(frame.game, self.principal)
        command = frame.action(self.principal.user_id)
        view = await self._ask(frame.game, command, GameView)
        self.session.reply(ack_frame(frame.game, frame.rid, game_json(view)))

    async def _ask(
        self, game_id: str, command: GameMessage, reply: type[_Reply]
    ) -> _Reply:
        timeout = self._edge.config.ask_timeout
        return await ask_for(self._edge.service, game_id, command, reply, timeout)

    async def _unsubscribe_all(self) -> None:
        for game_id in self.session.games:
            await self._unsubscribe(game_id)

    async def _unsubscribe(self, game_id: str) -> None:
        try:
            await self._edge.service.unsubscribe(game_id, self)
        except Exception:
            # A closed session ignores late events: a failed unsubscribe costs
            # the game some memory, never a wrong delivery.
            log.warning("ws_unsubscribe_failed", connection=self.id, game_id=game_id)


class WebSocketEdge:
    """The handshake and the per-socket handler of the WebSocket server."""

    def __init__(
        self,
        service: GameService,
        verifier: TokenVerifier,
        config: WebSocketConfig,
        observer: TransportObserver,
    ) -> None:
        self.service = service
        self.config = config
        self.observer = observer
        self.players = Players(
            service, capacity=config.players_cache_size, timeout=config.ask_timeout
        )
        self._verifier = verifier
        # Connections past their handshake, for the connection limit.
        self.connections: set[Connection] = set()

    def __repr__(self) -> str:
        return f"<WebSocketEdge connections={len(self.connections)}>"

    async def handshake(
        self, socket: ServerConnection, request: Request
    ) -> Response | None:
        """Accept the upgrade, or answer it with an error in the contract's shape."""
        url = urlsplit(request.path)
        try:
            if url.path != self.config.path:
                raise RouteNotFound(f"WebSocket connections go to {self.config.path}")

            if len(self.connections) >= self.config.max_connections:
                raise Overloaded("too many connections; retry later")

            principal = await authenticate(self._verifier, _token(request, url.query))
        except LiveGameError as exc:
            # Refusals are the client's business; a full server is ours.
            level = log.warning if isinstance(exc, Overloaded) else log.debug
            level("ws_handshake_refused", code=exc.code)
            return _refusal(exc)

        if isinstance(socket, AuthenticatedConnection):
            socket.principal = principal

        return None

    async def handle(self, socket: ServerConnection) -> None:
        principal = getattr(socket, "principal", None)
        if principal is None:
            # serve_websocket always installs the handshake; this is a misuse.
            await socket.close(CLOSE_INTERNAL_ERROR, "unauthenticated connection")
            return

        connection = Connection(socket, principal, self._session(), self)
        self.connections.add(connection)
        self.observer.connection_opened()
        bound = log.bind(connection=connection.id, user=principal.user_id)
        bound.info("ws_connection_opened")
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            code = socket.close_code if socket.close_code is not None else 1006
            self.observer.connection_closed(code)
            bound.info(
                "ws_connection_closed",
                code=code,
                frames_in=connection.session.frames_in,
                frames_out=connection.session.frames_out,
                games=len(connection.session.games),
            )

    def _session(self) -> Session:
        return Session(
            capacity=self.config.outbound_capacity,
            rate=self.config.connection_rate,
            flood_strikes=self.config.flood_strikes,
            max_subscriptions=self.config.max_subscriptions,
            on_refusal=self.observer.frame_rejected,
        )


def _token(request: Request, query: str) -> str | None:
    """The token of ``?token=``, else of ``Authorization: Bearer``."""
    tokens = parse_qs(query).get("token")
    if tokens:
        return tokens[-1]

    return bearer_token(request.headers.get("Authorization"))


def _refusal(error: LiveGameError) -> Response:
    status = http.HTTPStatus(error.status)
    body = encode(error.to_dict())
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
    )
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(error, Overloaded):
        headers["Retry-After"] = "1"

    return Response(status.value, status.phrase, headers, body)


async def serve_websocket(
    service: GameService,
    verifier: TokenVerifier,
    config: WebSocketConfig | None = None,
    *,
    observer: TransportObserver | None = None,
) -> Server:
    """
    Start the WebSocket server; stop it with ``close()`` and ``wait_closed()``.

    Closing the server closes each connection with 1001 (going away).
    """
    config = config or WebSocketConfig()
    edge = WebSocketEdge(service, verifier, config, observer or NullObserver())
    server = await serve(
        edge.handle,
        config.host,
        config.port,
        process_request=edge.handshake,
        create_connection=AuthenticatedConnection,
        # Deflate costs 40-60 % more CPU per frame for small JSON frames.
        compression=None,
        max_size=config.max_frame_bytes,
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        close_timeout=config.close_timeout,
    )
    bound = [socket.getsockname()[:2] for socket in server.sockets]
    log.info("ws_listening", addresses=bound, path=config.path)

    return server
