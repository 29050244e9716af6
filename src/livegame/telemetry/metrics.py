"""
Every Prometheus metric the server exports, declared once.

Names and labels are the ones OPERATIONS.md fixes, plus the runtime's own:
``live_game_actors``, ``live_game_actor_*`` (mailbox depth, messages
processed, restarts, full-mailbox refusals, all by actor kind),
``live_game_outbox_backlog``, ``live_game_games_ended_total``, the
WebSocket close and rejected-frame counters, and the PostgreSQL pool's
``db_pool_connections{state}`` and ``db_pool_max_connections``.

All of them live in :data:`REGISTRY`, a project registry rather than
prometheus_client's global one, so that tests and ``GET /metrics`` see this
module's metrics and nothing a library happens to register; the process,
platform and garbage collector collectors are added to it explicitly.
``GET /metrics`` answers with :func:`render`.

Label values stay bounded; a game, user or connection id is never a label:

* ``method``: an upper-case HTTP method, ``OTHER`` for anything unusual.
* ``endpoint``: the route template (``/api/games/{id}/moves``), never the raw
  path; ``unmatched`` when no route matched.
* ``status``: the numeric HTTP status code (``200``, ``503``).
  ``http_errors_total`` counts every response with a status of 400 or more;
  the error-rate SLO takes only ``status=~"5.."``.
* ``result`` of ``live_game_moves_total``: see :data:`MoveResult`.
* ``operation``: a fixed snake_case verb chosen by the persistence layer
  (``append_batch``, ``load_game``, ``claim_epoch``, ``outbox_fetch``), never
  SQL text.
* ``service``: ``redis``, ``auth_api``, ``bot_orchestrator``, ``peer_node``
  (a request forwarded to the node owning a game). PostgreSQL and Kafka have
  metrics of their own.
* ``status`` of external calls: ``ok``, ``error`` or ``timeout``; of Kafka
  publishes: ``ok`` or ``error``.
* ``event_type``: the outbox event type (``game_created``, ``move_played``,
  ``game_ended``, ...).
* ``state`` of pool connections: ``busy`` or ``idle``.
* ``kind``: the actor kind, the class name of its instance (``GameActor``,
  ``ConnectionActor``, ``Supervisor``...), never its path.

The helpers cache label children, so the hot path costs a dict lookup and an
increment; :func:`actor_metrics` hands the runtime all children of one kind
at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Generic, Literal, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

# The `_created` series would double every counter's and histogram's series
# and no dashboard or alert reads them. This is process-wide.
disable_created_metrics()

REGISTRY: Final = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Edges sit on every SLO threshold of OPERATIONS.md (50, 100, 200 and 500 ms)
# so histogram_quantile interpolates inside a bucket that ends on the line.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)

# How one submitted move ended; each move is counted once, under one result.
# valid: accepted, the game goes on. invalid: refused (illegal, out of turn,
# stale ply, game over, not a player). checkmate / stalemate / draw: accepted
# and it ended the game (draw: fivefold, seventy-five moves or insufficient
# material). timeout: refused because the mover's clock had already run out,
# which ends the game on time. Resignation, agreed draws and aborts are not
# moves: they show in live_game_games_ended_total{status}.
MoveResult = Literal["valid", "invalid", "checkmate", "stalemate", "draw", "timeout"]
MOVE_RESULTS: Final[tuple[MoveResult, ...]] = (
    "valid",
    "invalid",
    "checkmate",
    "stalemate",
    "draw",
    "timeout",
)
CallStatus = Literal["ok", "error", "timeout"]

# HTTP
HTTP_REQUESTS: Final = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "endpoint", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_LATENCY: Final = Histogram(
    "http_request_latency_seconds",
    "HTTP request latency, from the request read to the response written.",
    ["method", "endpoint"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_ERRORS: Final = Counter(
    "http_errors_total",
    "HTTP responses with a status code of 400 or more, by status code.",
    ["status"],
    registry=REGISTRY,
)

# Games and players
ACTIVE_GAMES: Final = Gauge(
    "live_game_active_games",
    "Games in progress whose game actor lives on this node.",
    registry=REGISTRY,
)
MOVES: Final = Counter(
    "live_game_moves_total",
    "Moves submitted, by result.",
    ["result"],
    registry=REGISTRY,
)
MOVE_LATENCY: Final = Histogram(
    "live_game_move_latency_seconds",
    "Time from a move's submission to its reply (after commit, outbox row included).",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
GAMES_ENDED: Final = Counter(
    "live_game_games_ended_total",
    "Games ended, by final status.",
    ["status"],
    registry=REGISTRY,
)
WEBSOCKET_CONNECTIONS: Final = Gauge(
    "live_game_websocket_connections",
    "Open WebSocket connections on this node.",
    registry=REGISTRY,
)
WEBSOCKET_RECONNECTS: Final = Counter(
    "live_game_websocket_reconnects_total",
    "WebSocket connections that resumed a game from a ply already seen.",
    registry=REGISTRY,
)
WEBSOCKET_CLOSES: Final = Counter(
    "live_game_websocket_closes_total",
    "WebSocket connections closed, by close code (1006: dropped, no close frame).",
    ["code"],
    registry=REGISTRY,
)
WEBSOCKET_FRAMES_REJECTED: Final = Counter(
    "live_game_websocket_frames_rejected_total",
    "WebSocket frames answered with an error frame, by error code.",
    ["code"],
    registry=REGISTRY,
)

# Storage and other services
DB_QUERY_DURATION: Final = Histogram(
    "db_query_duration_seconds",
    "PostgreSQL query or transaction duration, by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
EXTERNAL_CALLS: Final = Counter(
    "external_service_calls_total",
    "Calls to other services, by service and outcome.",
    ["service", "status"],
    registry=REGISTRY,
)
EXTERNAL_CALL_DURATION: Final = Histogram(
    "external_service_call_duration_seconds",
    "Duration of calls to other services.",
    ["service"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
KAFKA_EVENTS_PUBLISHED: Final = Counter(
    "kafka_events_published_total",
    "Outbox events sent to Kafka, by event type and outcome.",
    ["event_type", "status"],
    registry=REGISTRY,
)
KAFKA_PUBLISH_DURATION: Final = Histogram(
    "kafka_event_publish_duration_seconds",
    "Time from handing an event to the producer to the broker's ack.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
KAFKA_PUBLISH_ERRORS: Final = Counter(
    "kafka_event_publish_errors_total",
    "Events whose publish failed (they stay in the outbox and are retried).",
    registry=REGISTRY,
)
OUTBOX_BACKLOG: Final = Gauge(
    "live_game_outbox_backlog",
    "Unpublished outbox rows, as last counted by this node's relay.",
    registry=REGISTRY,
)

# Actor runtime. Counters move as things happen; the gauges of live actors
# and mailbox depths are computed at scrape time by _ActorGauges.
ACTOR_MESSAGES: Final = Counter(
    "live_game_actor_messages_processed_total",
    "Messages processed, by actor kind.",
    ["kind"],
    registry=REGISTRY,
)
ACTOR_RESTARTS: Final = Counter(
    "live_game_actor_restarts_total",
    "Actor restarts by their supervisor, by actor kind.",
    ["kind"],
    registry=REGISTRY,
)
ACTOR_MAILBOX_FULL: Final = Counter(
    "live_game_actor_mailbox_full_total",
    "Messages refused because the mailbox was full (overload), by actor kind.",
    ["kind"],
    registry=REGISTRY,
)


_M = TypeVar("_M", Counter, Gauge, Histogram)


class _Children(Generic[_M]):
    """The label children of one metric, cached by their label values."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._cache: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._cache.get(values)
        if child is None:
            # A race here only binds the same child twice: labels() is locked.
            child = self._cache[values] = self._metric.labels(*values)

        return child


_HTTP_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)
_http_requests: Final = _Children(HTTP_REQUESTS)
_http_latency: Final = _Children(HTTP_REQUEST_LATENCY)
_http_errors: Final = _Children(HTTP_ERRORS)
_moves: Final = {result: MOVES.labels(result) for result in MOVE_RESULTS}
_games_ended: Final = _Children(GAMES_ENDED)
_ws_closes: Final = _Children(WEBSOCKET_CLOSES)
_ws_frames_rejected: Final = _Children(WEBSOCKET_FRAMES_REJECTED)
_db_query: Final = _Children(DB_QUERY_DURATION)
_external_calls: Final = _Children(EXTERNAL_CALLS)
_external_duration: Final = _Children(EXTERNAL_CALL_DURATION)
_kafka_published: Final = _Children(KAFKA_EVENTS_PUBLISHED)


def observe_http(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Record one HTTP response; ``endpoint`` is the route template."""
    if method not in _HTTP_METHODS:
        method = "OTHER"
    code = str(status)
    _http_requests(method, endpoint, code).inc()
    _http_latency(method, endpoint).observe(seconds)
    if status >= 400:
        _http_errors(code).inc()


def count_move(result: MoveResult) -> None:
    """Count one submitted move under its result."""
    _moves[result].inc()


def observe_move(result: MoveResult, seconds: float) -> None:
    """Count one move and record how long its submission took to answer."""
    _moves[result].inc()
    MOVE_LATENCY.observe(seconds)


def count_game_end(status: str) -> None:
    """Count one ended game by its final status (``mate``, ``resign``...)."""
    _games_ended(status).inc()


def count_websocket_close(code: int) -> None:
    """Count one closed WebSocket connection by its close code."""
    # Standard codes and this server's own 4000-4099 range; any other code a
    # client sends is folded so that the label stays bounded.
    known = 1000 <= code <= 1015 or 4000 <= code <= 4099
    _ws_closes(str(code) if known else "other").inc()


def count_frame_rejected(code: str) -> None:
    """Count one WebSocket frame refused with the error ``code``."""
    _ws_frames_rejected(code).inc()


def db_query(operation: str) -> Histogram:
    """
    Return the duration histogram of one database operation.

    Use its timer around the query: ``with db_query("load_game").time(): ...``.
    """
    return _db_query(operation)


def record_external_call(service: str, status: CallStatus, seconds: float) -> None:
    """Record one finished call to another service."""
    _external_calls(service, status).inc()
    _external_duration(service).observe(seconds)


class _ExternalCall:
    __slots__ = ("_service", "_started")

    def __init__(self, service: str) -> None:
        self._service = service
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self._started
        if exc_type is None:
            record_external_call(self._service, "ok", seconds)
        elif issubclass(exc_type, TimeoutError):
            record_external_call(self._service, "timeout", seconds)
        elif issubclass(exc_type, Exception):
            record_external_call(self._service, "error", seconds)


def external_call(service: str) -> AbstractContextManager[None]:
    """
    Time a call to another service and record its outcome.

    ``with external_call("auth-api"): ...`` counts ``ok`` when the block
    returns, ``timeout`` on :class:`TimeoutError` and ``error`` on any other
    exception. A cancelled call is not recorded: it says nothing about the
    service.
    """
    return _ExternalCall(service)


def record_kafka_publish(event_type: str, *, ok: bool, seconds: float) -> None:
    """
    Record one event's publish attempt.

    ``seconds`` runs from handing the event to the producer to the broker's
    answer; in a batch, each event reports its own send-to-ack time.
    """
    KAFKA_PUBLISH_DURATION.observe(seconds)
    if ok:
        _kafka_published(event_type, "ok").inc()
    else:
        _kafka_published(event_type, "error").inc()
        KAFKA_PUBLISH_ERRORS.inc()


@dataclass(frozen=True, slots=True)
class ActorMetrics:
    """The counters of one actor kind, bound once; the runtime increments them."""

    kind: str
    processed: Counter
    restarts: Counter
    mailbox_full: Counter


_actor_metrics: dict[str, ActorMetrics] = {}


def actor_metrics(kind: str) -> ActorMetrics:
    """Return the counters of one actor kind (the same object each time)."""
    metrics = _actor_metrics.get(kind)
    if metrics is None:
        metrics = _actor_metrics[kind] = ActorMetrics(
            kind=kind,
            processed=ACTOR_MESSAGES.labels(kind),
            restarts=ACTOR_RESTARTS.labels(kind),
            mailbox_full=ACTOR_MAILBOX_FULL.labels(kind),
        )

    return metrics


# Called at scrape time, on the event loop that runs the actors; yields
# (kind, mailbox depth) for every live actor of this node.
ActorSource = Callable[[], Iterable[tuple[str, int]]]


class _ActorGauges(Collector):
    """Live actors and mailbox depths by kind, read from the runtime at scrape."""

    def __init__(self) -> None:
        self.source: ActorSource | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        if self.source is None:
            return families

        # kind -> [actors, queued messages, deepest mailbox]
        totals: dict[str, list[int]] = {}
        for kind, depth in self.source():
            row = totals.get(kind)
            if row is None:
                totals[kind] = [1, depth, depth]
            else:
                row[0] += 1
                row[1] += depth
                row[2] = max(row[2], depth)

        for kind, row in totals.items():
            for family, value in zip(families, row, strict=True):
                family.add_metric([kind], value)

        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "live_game_actors",
                "Live actors on this node, by kind.",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "live_game_actor_mailbox_depth",
                "Messages waiting in the mailboxes of all actors of a kind.",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "live_game_actor_mailbox_depth_max",
                "Messages waiting in the fullest mailbox of a kind (a hot game).",
                labels=["kind"],
            ),
        ]


_actor_gauges: Final = _ActorGauges()
REGISTRY.register(_actor_gauges)


def watch_actors(source: ActorSource | None) -> None:
    """
    Set where the live-actor and mailbox-depth gauges are read from.

    The node calls it once at start with a function walking its actor
    cells, and with ``None`` at stop. Scrapes must run on the event loop
    that runs the actors, so the walk sees a consistent tree.
    """
    _actor_gauges.source = source


# Called at scrape time; returns (connections open, of which idle, most
# allowed), e.g. from asyncpg's get_size(), get_idle_size(), get_max_size().
PoolSource = Callable[[], tuple[int, int, int]]


class _PoolGauges(Collector):
    """The PostgreSQL pool's connections, read from the pool at scrape."""

    def __init__(self) -> None:
        self.source: PoolSource | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        connections, limit = self._families()
        if self.source is not None:
            size, idle, most = self.source()
            connections.add_metric(["busy"], size - idle)
            connections.add_metric(["idle"], idle)
            limit.add_metric([], most)

        return connections, limit

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "db_pool_connections",
                "Open PostgreSQL connections of this node's pool, busy or idle.",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "db_pool_max_connections",
                "Most connections this node's pool may open (DB_POOL_MAX).",
            ),
        )


_pool_gauges: Final = _PoolGauges()
REGISTRY.register(_pool_gauges)


def watch_db_pool(source: PoolSource | None) -> None:
    """
    Set where the connection pool gauges are read from.

    Busy connections near the maximum mean the pool is exhausted: queries
    then wait for a connection, which ``db_query_duration_seconds`` shows.
    """
    _pool_gauges.source = source


def render(accept: str | None = None) -> tuple[bytes, str]:
    """
    Return the body and content type that answer ``GET /metrics``.

    ``accept`` is the request's Accept header: a scraper asking for
    OpenMetrics gets it, anyone else the Prometheus text format.
    """
    if not accept:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

    encoder, content_type = choose_encoder(accept)

    return encoder(REGISTRY), content_type
