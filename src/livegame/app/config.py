"""
The node's configuration, read once from environment variables.

Every variable, its default and its meaning is listed in :data:`VARIABLES`;
the README's configuration table is made from the same list
(``livegame config`` prints it), so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from livegame.errors import LiveGameError


class ConfigError(LiveGameError):
    code = "bad_configuration"
    status = 500


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/live_game",
        "PostgreSQL DSN",
    ),
    Variable("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL"),
    Variable("REDIS_PREFIX", "livegame:", "prefix of every Redis key"),
    Variable(
        "KAFKA_BOOTSTRAP_SERVERS",
        "127.0.0.1:9092",
        "Kafka bootstrap servers, comma separated",
    ),
    Variable("KAFKA_TOPIC", "live-game.events", "topic of game events"),
    Variable(
        "KAFKA_IDEMPOTENCE",
        "auto",
        "idempotent producer: auto (use it where the broker supports it), "
        "true or false",
    ),
    Variable("AUTH_SECRET", "", "HS256 secret of player tokens (required by serve)"),
    Variable(
        "AUTH_URL",
        "",
        "token introspection endpoint (RFC 7662) of an external auth service; "
        "unset: only tokens signed with AUTH_SECRET",
    ),
    Variable("AUTH_CLIENT_TOKEN", "", "bearer token this node shows the auth service"),
    Variable("AUTH_TIMEOUT_SECONDS", "2", "longest wait for the auth service"),
    Variable(
        "AUTH_CACHE_SECONDS",
        "60",
        "how long the auth service's answer for a token is reused",
    ),
    Variable("NODE_ID", "", "this node's id in the cluster (default: host name)"),
    Variable("HOST", "0.0.0.0", "address the HTTP and WebSocket servers bind"),
    Variable("HTTP_PORT", "8080", "HTTP API port"),
    Variable("WS_PORT", "8081", "WebSocket port"),
    Variable("DB_POOL_MIN", "20", "PostgreSQL pool, fewest connections"),
    Variable("DB_POOL_MAX", "40", "PostgreSQL pool, most connections"),
    Variable("REDIS_POOL_MAX", "40", "Redis pool, most connections"),
    Variable("GROUP_COMMIT_MAX", "256", "appends that trigger a commit at once"),
    Variable(
        "GROUP_COMMIT_WINDOW_MS", "2", "longest wait for more appends before a commit"
    ),
    Variable(
        "GAME_IDLE_SECONDS", "300", "idle seconds before a game actor is passivated"
    ),
    Variable(
        "GAME_ENDED_IDLE_SECONDS",
        "30",
        "idle seconds before the actor of a game that has ended is passivated",
    ),
    Variable("GAME_MAILBOX", "256", "mailbox capacity of one game actor"),
    Variable(
        "OUTBOX_RETENTION_SECONDS",
        "600",
        "how long published outbox rows stay before they are deleted",
    ),
    Variable("LEASE_TTL_SECONDS", "10", "node lease time to live in Redis"),
    Variable("MAX_BODY_BYTES", "16384", "largest HTTP request body"),
    Variable("MAX_FRAME_BYTES", "16384", "largest WebSocket frame"),
    Variable("USER_RATE", "20", "HTTP requests per second per user (burst 2x)"),
    Variable("WS_RATE", "10", "WebSocket frames per second per connection (burst 2x)"),
    Variable("MAX_CONNECTIONS", "10000", "WebSocket connections per node"),
    Variable(
        "MAX_CONNECTIONS_PER_USER",
        "32",
        "WebSocket connections of one user at once (the service role: no limit)",
    ),
    Variable(
        "CORS_ORIGINS",
        "",
        "origins (scheme://host[:port], comma separated, or *) whose web pages "
        "may use the API and the WebSocket from a browser",
    ),
    Variable("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Variable("DEBUG", "false", "true: human-readable logs and debug checks"),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "OTLP/HTTP endpoint of traces; unset: no export",
    ),
    Variable("OTEL_TRACES_SAMPLER_ARG", "0.01", "fraction of moves traced"),
    Variable("TELEMETRY", "true", "false turns tracing off; metrics stay on"),
)


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    redis_prefix: str
    kafka_bootstrap_servers: str
    kafka_topic: str
    kafka_idempotence: str
    auth_secret: str
    auth_url: str
    auth_client_token: str
    auth_timeout_seconds: float
    auth_cache_seconds: float
    node_id: str
    host: str
    http_port: int
    ws_port: int
    db_pool_min: int
    db_pool_max: int
    redis_pool_max: int
    group_commit_max: int
    group_commit_window_ms: float
    game_idle_seconds: float
    game_ended_idle_seconds: float
    game_mailbox: int
    outbox_retention_seconds: float
    lease_ttl_seconds: float
    max_body_bytes: int
    max_frame_bytes: int
    user_rate: float
    ws_rate: float
    max_connections: int
    max_connections_per_user: int
    cors_origins: str
    log_level: str
    debug: bool
    otel_exporter_otlp_endpoint: str
    otel_traces_sampler_arg: float
    telemetry: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every variable of :data:`VARIABLES`, applying defaults."""
        env = os.environ if env is None else env
        raw = {v.name.lower(): env.get(v.name, v.default) for v in VARIABLES}
        if not raw["node_id"]:
            raw["node_id"] = socket.gethostname()

        values: dict[str, Any] = {}
        for f in fields(cls):
            text = raw[f.name]
            try:
                values[f.name] = _convert(f.type, text)
            except ValueError:
                raise ConfigError(
                    f"{f.name.upper()}={text!r} is not a valid {f.type}"
                ) from None
        settings = cls(**values)
        settings.validate()

        return settings

    @property
    def origins(self) -> frozenset[str]:
        """The origins of ``CORS_ORIGINS``, without trailing slashes."""
        parts = (part.strip().rstrip("/") for part in self.cors_origins.split(","))
        return frozenset(part for part in parts if part)

    def validate(self) -> None:
        for origin in self.origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(
                    f"CORS_ORIGINS: {origin!r} is not * or scheme://host[:port]"
                )
        if self.db_pool_min > self.db_pool_max:
            raise ConfigError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if self.max_connections_per_user < 1:
            raise ConfigError("MAX_CONNECTIONS_PER_USER must be at least 1")
        if self.outbox_retention_seconds < 0:
            raise ConfigError("OUTBOX_RETENTION_SECONDS must not be negative")
        if self.auth_url and not self.auth_url.startswith(("http://", "https://")):
            raise ConfigError("AUTH_URL must be an http:// or https:// URL")
        if self.auth_timeout_seconds <= 0:
            raise ConfigError("AUTH_TIMEOUT_SECONDS must be positive")
        if self.auth_cache_seconds < 0:
            raise ConfigError("AUTH_CACHE_SECONDS must not be negative")
        if self.kafka_idempotence not in {"auto", "true", "false"}:
            raise ConfigError("KAFKA_IDEMPOTENCE must be auto, true or false")
        if not 0.0 <= self.otel_traces_sampler_arg <= 1.0:
            raise ConfigError("OTEL_TRACES_SAMPLER_ARG must be within 0..1")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")


def _convert(kind: Any, text: str) -> Any:
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    if kind in (bool, "bool"):
        return _truthy(text)
    return text


def describe() -> str:
    """Return the configuration table in Markdown."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for v in VARIABLES:
        default = f"`{v.default}`" if v.default else "(none)"
        rows.append(f"| `{v.name}` | {default} | {v.help} |")
    return "\n".join(rows)
