"""
The WebSocket server: its handshake, its limits, and one
:class:`~livegame.transport.connection.Connection` per socket.

The handshake authenticates with ``?token=`` or ``Authorization: Bearer``
and answers refusals (401, 404, 503) in the contract's error shape.

Close codes: 1008 flood, 1009 frame too big (by websockets), 1011 internal
error, 4008 slow consumer, 4009 out of sync. After 4008 and 4009 the client
resubscribes with ``since`` set to the last ply it saw.
"""

from __future__ import annotations

import email.utils
import http
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from livegame.errors import LiveGameError, Overloaded, Unauthorized
from livegame.transport.access import Players
from livegame.transport.auth import Principal, TokenVerifier, authenticate, bearer_token
from livegame.transport.codec import encode
from livegame.transport.config import WebSocketConfig, origin_listed
from livegame.transport.connection import CLOSE_INTERNAL_ERROR, Connection
from livegame.transport.errors import (
    OriginNotAllowed,
    RouteNotFound,
    TooManyConnections,
)
from livegame.transport.observer import NullObserver, TransportObserver
from livegame.transport.service import GameService
from livegame.transport.session import Session

log = structlog.get_logger(__name__)


class AuthenticatedConnection(ServerConnection):
    """A server connection that remembers who passed the handshake."""

    principal: Principal | None = None


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
        # Open connections by user, for the per-user limit.
        self._per_user: Counter[str] = Counter()

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

            origin = request.headers.get("Origin")
            allowed = self.config.allowed_origins
            if origin is not None and allowed and not origin_listed(allowed, origin):
                raise OriginNotAllowed(f"origin {origin[:100]!r} is not allowed")

            if len(self.connections) >= self.config.max_connections:
                raise Overloaded("too many connections; retry later")

            principal = await authenticate(self._verifier, _token(request, url.query))
            self._check_user_limit(principal)
        except LiveGameError as exc:
            # Refusals are the client's business; a full server is ours.
            level = log.warning if isinstance(exc, Overloaded) else log.debug
            level("ws_handshake_refused", code=exc.code)
            return _refusal(exc)

        if isinstance(socket, AuthenticatedConnection):
            socket.principal = principal

        return None

    def _check_user_limit(self, principal: Principal) -> None:
        if principal.is_service:
            return
        if self._per_user[principal.user_id] >= self.config.max_connections_per_user:
            raise TooManyConnections(
                f"{self.config.max_connections_per_user} connections per user at "
                "most; close one first",
                retry_after=1.0,
            )

    async def handle(self, socket: ServerConnection) -> None:
        principal = getattr(socket, "principal", None)
        if principal is None:
            # serve_websocket always installs the handshake; this is a misuse.
            await socket.close(CLOSE_INTERNAL_ERROR, "unauthenticated connection")
            return

        connection = Connection(
            socket,
            principal,
            self._session(),
            service=self.service,
            players=self.players,
            observer=self.observer,
            ask_timeout=self.config.ask_timeout,
        )
        self.connections.add(connection)
        self._per_user[principal.user_id] += 1
        self.observer.connection_opened()
        bound = log.bind(connection=connection.id, user=principal.user_id)
        bound.info("ws_connection_opened")
        # A node runs each connection as an actor; a bare service does not.
        attach = getattr(self.service, "attach_connection", None)
        try:
            if attach is not None:
                await attach(connection)
            await connection.run()
        finally:
            detach = getattr(self.service, "detach_connection", None)
            if detach is not None:
                await detach(connection)
            self.connections.discard(connection)
            self._per_user[principal.user_id] -= 1
            if self._per_user[principal.user_id] <= 0:
                del self._per_user[principal.user_id]
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
    elif error.status in (429, 503):
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
