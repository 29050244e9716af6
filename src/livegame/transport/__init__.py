"""
The HTTP and WebSocket edges of a node, written against :class:`GameService`.

What the rest of the server may import from here: the facade a node
implements (:class:`GameService`, :class:`BoardView`, :data:`CheckResult`),
the two servers (:func:`build_app` with :func:`start_http`, and
:func:`serve_websocket`), their configuration, authentication
(:class:`Principal`, :class:`TokenVerifier`, :class:`JwtVerifier`,
:func:`mint_token`, and for an external auth service
:class:`IntrospectionVerifier` behind a :class:`ChainVerifier`) and the
telemetry hook (:class:`TransportObserver`).
"""

from livegame.transport.auth import (
    ADMIN,
    SERVICE,
    JwtVerifier,
    Principal,
    TokenVerifier,
    mint_token,
)
from livegame.transport.config import HttpConfig, WebSocketConfig
from livegame.transport.http import build_app, start_http
from livegame.transport.introspection import ChainVerifier, IntrospectionVerifier
from livegame.transport.observer import NullObserver, TransportObserver
from livegame.transport.ratelimit import RateLimit
from livegame.transport.service import BoardView, CheckResult, GameService
from livegame.transport.websocket import serve_websocket

__all__ = [
    "ADMIN",
    "SERVICE",
    "BoardView",
    "ChainVerifier",
    "CheckResult",
    "GameService",
    "HttpConfig",
    "IntrospectionVerifier",
    "JwtVerifier",
    "NullObserver",
    "Principal",
    "RateLimit",
    "TokenVerifier",
    "TransportObserver",
    "WebSocketConfig",
    "build_app",
    "mint_token",
    "serve_websocket",
    "start_http",
]
