"""
Adapters that turn the edges' reports into metrics.

The transport layer reports to an observer it declares itself and never
touches a metric; :class:`TransportMetrics` matches that observer's methods
by shape, so neither package imports the other.
"""

from __future__ import annotations

from livegame.telemetry import metrics


class TransportMetrics:
    """Count HTTP requests and WebSocket connections from transport reports."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<TransportMetrics>"

    def request_finished(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        metrics.observe_http(method, route, status, seconds)

    def connection_opened(self) -> None:
        metrics.WEBSOCKET_CONNECTIONS.inc()

    def connection_closed(self, code: int) -> None:
        metrics.WEBSOCKET_CONNECTIONS.dec()
        metrics.count_websocket_close(code)

    def connection_resumed(self) -> None:
        """A client subscribed from a ply it had already seen: a reconnect."""
        metrics.WEBSOCKET_RECONNECTS.inc()

    def frame_rejected(self, code: str) -> None:
        metrics.count_frame_rejected(code)
