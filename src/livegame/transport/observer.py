"""
Hooks through which telemetry watches the edges.

The transport layer declares no metrics; it reports what happens to a
:class:`TransportObserver`, and the telemetry package turns the reports into
Prometheus series. Labels handed over are bounded: a route template, never a
path with a game id in it.
"""

from __future__ import annotations

from typing import Protocol


class TransportObserver(Protocol):
    def request_finished(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        """One HTTP request answered; ``route`` is its template."""

    def connection_opened(self) -> None:
        """A WebSocket handshake succeeded."""

    def connection_closed(self, code: int) -> None:
        """A WebSocket connection ended with close ``code``."""

    def connection_resumed(self) -> None:
        """A client subscribed from a ply it had seen: it is catching up."""

    def frame_rejected(self, code: str) -> None:
        """A WebSocket frame got an error frame with ``code``."""


class NullObserver:
    """Observe nothing; the default until telemetry plugs in."""

    def __repr__(self) -> str:
        return "<NullObserver>"

    def request_finished(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        return None

    def connection_opened(self) -> None:
        return None

    def connection_closed(self, code: int) -> None:
        return None

    def connection_resumed(self) -> None:
        return None

    def frame_rejected(self, code: str) -> None:
        return None
