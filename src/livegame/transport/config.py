"""
The knobs of the HTTP and WebSocket edges, with the contract's defaults.

The application package fills these from the environment; the transport
layer reads nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livegame.transport.ratelimit import RateLimit


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    # Larger request bodies get 413 payload_too_large.
    max_body_bytes: int = 16 * 1024
    # How long a handler waits for a game actor before answering 503.
    ask_timeout: float = 5.0
    # Requests per authenticated user, across all API routes.
    user_rate: RateLimit = field(default_factory=lambda: RateLimit(20.0, 40))
    # Users whose buckets are remembered; the least recently seen go first.
    rate_table_size: int = 100_000
    # Retry-After, in seconds, sent with 503 overloaded and not_ready.
    retry_after_seconds: int = 1
    # Games whose players are remembered for authorization checks.
    players_cache_size: int = 50_000
    # Web pages of these origins may call the API from a browser ("*": any).
    cors_origins: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    host: str = "0.0.0.0"
    port: int = 8081
    path: str = "/ws"
    # Larger frames close the connection with 1009 (message too big).
    max_frame_bytes: int = 16 * 1024
    # Frames waiting to be written; a subscriber that overflows it is closed.
    outbound_capacity: int = 256
    # Frames per connection.
    connection_rate: RateLimit = field(default_factory=lambda: RateLimit(10.0, 20))
    # Rate-limited frames in a row before the connection is closed.
    flood_strikes: int = 20
    max_subscriptions: int = 16
    # Connections beyond this are refused with 503 during the handshake.
    max_connections: int = 10_000
    # Open connections of one user (not of the service role); beyond it the
    # handshake is refused with 429 too_many_connections.
    max_connections_per_user: int = 32
    ask_timeout: float = 5.0
    # Games whose players are remembered for authorization checks.
    players_cache_size: int = 50_000
    # Keepalive pings, in seconds; None disables them.
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 5.0
    # Browsers on other origins are refused (403); clients that send no
    # Origin are not browsers and are let in. Empty or "*": any origin.
    allowed_origins: frozenset[str] = frozenset()


def origin_listed(origins: frozenset[str], origin: str) -> bool:
    """Whether ``origins`` (a list of origins, or ``*`` for any) holds ``origin``."""
    return "*" in origins or origin in origins
