"""
One WebSocket connection: a reader loop and a writer loop around a session.

A :class:`Connection` is the :class:`~livegame.actors.game.messages.Subscriber`
the games deliver to; its :class:`~livegame.transport.session.Session` holds
all the state, so the connection is only I/O and could become an actor at
``/user/connections/<id>``. The reader executes one client request at a time,
so replies keep request order. Frames go to the socket as soon as they are
queued while it takes them without waiting; while it is paused (the client
reads slowly) they wait in the session's bounded outbox, which the writer
drains. Point of view for message names: the server's (see :mod:`inbound`
and :mod:`outbound`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from typing import Any, Final, TypeVar

import structlog
from opentelemetry.trace import SpanKind
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from livegame.actors.actor import Actor
from livegame.actors.game.events import GameEvent
from livegame.actors.game.messages import GameMessage, GameView, MoveResult, PlayMove
from livegame.actors.ref import ActorRef
from livegame.errors import LiveGameError, Overloaded
from livegame.telemetry.tracing import span
from livegame.transport.access import Players
from livegame.transport.auth import Principal
from livegame.transport.inbound import (
    ActionFrame,
    ClientFrame,
    MoveFrame,
    PingFrame,
    SubscribeFrame,
    UnsubscribeFrame,
)
from livegame.transport.observer import TransportObserver
from livegame.transport.outbound import ack_frame, game_json, move_result_json
from livegame.transport.service import GameService, ask_for
from livegame.transport.session import CLOSE_SLOW_CONSUMER, Session

log = structlog.get_logger(__name__)

CLOSE_INTERNAL_ERROR: Final = 1011

_Reply = TypeVar("_Reply")


class Connection:
    """One client socket: a session driven by a reader and a writer."""

    def __init__(
        self,
        socket: ServerConnection,
        principal: Principal,
        session: Session,
        *,
        service: GameService,
        players: Players,
        observer: TransportObserver,
        ask_timeout: float,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.principal = principal
        self.session = session
        self._socket = socket
        self._service = service
        self._players = players
        self._observer = observer
        self._ask_timeout = ask_timeout
        # Set whenever the session has something for the writer to do.
        self._wake = asyncio.Event()
        # Set once the session asks for the socket to be closed.
        self._closing = asyncio.Event()
        # The connection's actor, once attached: frames and events go
        # through its mailbox, one at a time.
        self._ref: ActorRef[Any] | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.id} user={self.principal.user_id} {self.session!r}>"

    def attach(self, ref: ActorRef[Any]) -> None:
        """Drive this connection through its actor's mailbox from now on."""
        self._ref = ref

    def deliver(self, event: GameEvent) -> None:
        ref = self._ref
        if ref is None:
            self.take(event)
            return
        try:
            ref.tell(event)
        except LiveGameError:
            # Its mailbox is full: the client reads too slowly to keep up.
            self.session.request_close(CLOSE_SLOW_CONSUMER, "slow consumer")
            self._poke()

    def take(self, event: GameEvent) -> None:
        """Queue one game event for the client (the actor's side of deliver)."""
        self.session.deliver(event)
        self._poke()

    def abandon(self, reason: str) -> None:
        """Close the socket because the connection's actor has gone."""
        if self.session.close_request is None:
            self.session.request_close(CLOSE_INTERNAL_ERROR, reason)
        self._poke()

    def _poke(self) -> None:
        if self.session.close_request is None:
            if self._write_now() and not self.session.finishing:
                return
        self._wake.set()
        if self.session.close_request is not None:
            self._closing.set()

    def _write_now(self) -> bool:
        """
        Write the queued frames at once if the socket takes them without waiting.

        Most frames go out this way, without waking the writer: only while the
        socket is paused (the client reads slowly) or not open does the writer
        take over, and it waits for the socket to drain.
        """
        socket = self._socket
        protocol = socket.protocol
        if socket.paused or protocol.state is not State.OPEN:
            return False
        wrote = False
        while (frame := self.session.next_frame()) is not None:
            protocol.send_text(frame)
            wrote = True
        if wrote:
            socket.send_data()
        return True

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
            # Frames the client sent meanwhile must be read, or its answer to
            # our close frame waits behind them until the close times out.
            discard = asyncio.create_task(self._discard_incoming())
            try:
                await self._socket.close(close.code, close.reason)
            finally:
                discard.cancel()
                await asyncio.gather(discard, return_exceptions=True)

    async def _discard_incoming(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in self._socket:
                pass

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
                    await self._submit(frame)

                self._poke()
                if self.session.close_request is not None:
                    return

    async def _write_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while self.session.close_request is None:
                await self._wake.wait()
                self._wake.clear()
                await self._flush()
                for game_id in self.session.take_finished():
                    await self._unsubscribe(game_id)

    async def _flush(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (frame := self.session.next_frame()) is not None:
                await self._socket.send(frame, text=True)

    async def _submit(self, frame: ClientFrame) -> None:
        ref = self._ref
        if ref is None:
            await self._execute(frame)
            return
        try:
            ref.tell(frame)
        except LiveGameError as exc:
            # Requests pile up faster than the games answer them.
            self.session.refuse(exc, frame.rid)

    async def execute(self, frame: ClientFrame) -> None:
        """Carry out one client request (the actor's side of the reader)."""
        await self._execute(frame)
        self._poke()

    async def _execute(self, frame: ClientFrame) -> None:
        try:
            with span("ws.message", kind=SpanKind.SERVER) as current:
                if current.is_recording():
                    current.set_attribute("ws.frame", type(frame).__name__)
                    current.set_attribute("ws.connection", self.id)
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
        elif isinstance(frame, UnsubscribeFrame):
            watched = self.session.unsubscribe(frame.game)
            if watched:
                await self._unsubscribe(frame.game)
            result = {"unsubscribed": watched}
            self.session.reply(ack_frame(frame.game, frame.rid, result))
        elif isinstance(frame, MoveFrame):
            await self._move(frame)
        else:
            await self._act(frame)

    async def _subscribe(self, frame: SubscribeFrame) -> None:
        self.session.begin_subscribe(frame.game)
        try:
            reply = await self._service.subscribe(frame.game, self, frame.since)
        except LiveGameError as exc:
            self.session.subscribe_failed(frame.game, exc, frame.rid)
            if isinstance(exc, Overloaded):
                # A timed-out subscribe may still have registered us.
                await self._unsubscribe(frame.game)
            return

        self.session.subscribed(frame.game, reply, frame.rid)
        if frame.since is not None:
            self._observer.connection_resumed()

    async def _move(self, frame: MoveFrame) -> None:
        await self._players.check_player(frame.game, self.principal)
        command = PlayMove(self.principal.user_id, frame.move.uci, frame.move.ply)
        result = await self._ask(frame.game, command, MoveResult)
        self.session.reply(ack_frame(frame.game, frame.rid, move_result_json(result)))

    async def _act(self, frame: ActionFrame) -> None:
        await self._players.check_player(frame.game, self.principal)
        command = frame.action(self.principal.user_id)
        view = await self._ask(frame.game, command, GameView)
        self.session.reply(ack_frame(frame.game, frame.rid, game_json(view)))

    async def _ask(
        self, game_id: str, command: GameMessage, reply: type[_Reply]
    ) -> _Reply:
        return await ask_for(self._service, game_id, command, reply, self._ask_timeout)

    async def _unsubscribe_all(self) -> None:
        for game_id in (*self.session.games, *self.session.take_finished()):
            await self._unsubscribe(game_id)

    async def _unsubscribe(self, game_id: str) -> None:
        try:
            await self._service.unsubscribe(game_id, self)
        except Exception:
            # A closed session ignores late events: a failed unsubscribe costs
            # the game some memory, never a wrong delivery.
            log.warning("ws_unsubscribe_failed", connection=self.id, game_id=game_id)


class ConnectionActor(Actor[Any]):
    """
    The actor of one socket, at ``/user/connections/<id>``.

    Its mailbox serializes what happens to the connection: client requests
    (parsed and rate-limited by the reader) and game events (told by the
    games it watches). When it stops or crashes, the socket is closed and the
    client reconnects and resumes from the last ply it saw.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def on_stop(self) -> None:
        self._connection.abandon("connection actor stopped")

    async def on_restart(self, error: BaseException) -> None:
        self._connection.abandon("connection actor crashed")

    async def receive(self, message: Any) -> None:
        if isinstance(message, GameEvent):
            self._connection.take(message)
        else:
            await self._connection.execute(message)
