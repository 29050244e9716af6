"""A whole node's telemetry: what /metrics counts, one trace per move, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from node_helpers import (
    SCHOLARS_MATE,
    Api,
    NodeProcess,
    api_client,
    eventually,
    http_base,
    mover,
    watching,
    ws_url,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client.parser import text_string_to_metric_families

from livegame.app.config import Settings
from livegame.app.embedded import free_port
from livegame.app.node import Node, open_node
from livegame.telemetry import logging as telemetry_logging
from livegame.telemetry.logging import configure_logging
from livegame.telemetry.tracing import configure_tracing, shutdown_tracing

pytestmark = pytest.mark.anyio

MOVES_ROUTE = "/api/games/{id}/moves"

# Every metric of OPERATIONS.md with its label names, as GET /metrics shows it.
OPERATIONS_METRICS: dict[str, set[str]] = {
    "http_requests_total": {"method", "endpoint", "status"},
    "http_request_latency_seconds": {"method", "endpoint"},
    "http_errors_total": {"status"},
    "live_game_active_games": set(),
    "live_game_moves_total": {"result"},
    "live_game_move_latency_seconds": set(),
    "live_game_websocket_connections": set(),
    "live_game_websocket_reconnects_total": set(),
    "db_query_duration_seconds": {"operation"},
    "external_service_calls_total": {"service", "status"},
    "external_service_call_duration_seconds": {"service"},
    "kafka_events_published_total": {"event_type", "status"},
    "kafka_event_publish_duration_seconds": set(),
    "kafka_event_publish_errors_total": set(),
}

Labels = tuple[tuple[str, str], ...]


class Scrape:
    """One answer of GET /metrics: every sample, by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, Labels], float] = {}
        # Family name (as the parser names it) -> label names seen, "le" aside.
        self.labels: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(text):
            names = self.labels.setdefault(family.name, set())
            for sample in family.samples:
                key = tuple(sorted(sample.labels.items()))
                self.samples[(sample.name, key)] = sample.value
                names.update(label for label in sample.labels if label != "le")

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api: Api) -> Scrape:
    reply = await api.request("GET", "/metrics")
    assert reply.status == 200, reply
    assert isinstance(reply.body, str)

    return Scrape(reply.body)


async def test_metrics_count_what_a_game_did(node: Node, api: Api) -> None:
    """Telemetry is off here (TELEMETRY=false): metrics work all the same."""
    url = ws_url(node.settings)
    before = await scrape(api)
    game_id = await api.create_game("alice", "bob")

    async with watching(url, "alice") as white, watching(url, "bob") as black:
        await white.subscribe(game_id)
        # From ply 0 on: a client that has seen the game before, reconnecting.
        await black.subscribe(game_id, since=0)
        during = await scrape(api)

        # Six quiet moves over HTTP, an illegal one, then the mate by WebSocket.
        await api.play(game_id, SCHOLARS_MATE[:6])
        illegal = await api.move(game_id, "alice", "e2e5", 6)
        assert illegal.status >= 400, illegal
        mate = await white.move(game_id, SCHOLARS_MATE[6], 6)
        assert (mate["type"], mate["result"]["status"]) == ("ack", "mate"), mate

    refused = str(illegal.status)
    wanted = {"game_ended": 1, "move_played": 7}
    await eventually(lambda: published(api, before, wanted))
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # Moves: each counted once, under its result, and timed.
    assert delta("live_game_moves_total", result="valid") == 6
    assert delta("live_game_moves_total", result="invalid") == 1
    assert delta("live_game_moves_total", result="checkmate") == 1
    assert delta("live_game_move_latency_seconds_count") == 8
    # HTTP: the requests made, by route template and status.
    moves = {"method": "POST", "endpoint": MOVES_ROUTE}
    assert delta("http_requests_total", **moves, status="200") == 6
    assert delta("http_requests_total", **moves, status=refused) == 1
    assert delta("http_request_latency_seconds_count", **moves) == 7
    create = {"method": "POST", "endpoint": "/api/games"}
    assert delta("http_requests_total", **create, status="201") == 1
    assert delta("http_errors_total", status=refused) == 1
    # The scrapes count themselves: before's is counted in during, and so on.
    metrics_ok = {"method": "GET", "endpoint": "/metrics", "status": "200"}
    assert during.value("http_requests_total", **metrics_ok) == (
        before.value("http_requests_total", **metrics_ok) + 1
    )
    # WebSockets: two open while the players were connected, one resumed.
    connections = "live_game_websocket_connections"
    assert during.value(connections) == before.value(connections) + 2
    assert delta("live_game_websocket_reconnects_total") == 1
    await eventually(
        lambda: gauge_is(api, connections, before.value(connections)), timeout=5
    )
    # Stores: the journal's queries, Redis calls, Kafka publishes.
    assert delta("db_query_duration_seconds_count", operation="load_game") >= 1
    assert delta("external_service_calls_total", service="redis", status="ok") >= 1
    assert delta("kafka_events_published_total", event_type="game_created", status="ok")
    assert delta("kafka_event_publish_duration_seconds_count") >= 9
    assert delta("kafka_event_publish_errors_total") == 0
    assert after.value("live_game_active_games") >= 1

    for name, label_names in OPERATIONS_METRICS.items():
        family = name.removesuffix("_total")
        assert after.labels.get(family) == label_names, name


async def published(api: Api, before: Scrape, wanted: dict[str, int]) -> bool:
    """Whether Kafka acknowledged at least so many more events of each type."""
    name = "kafka_events_published_total"
    now = await scrape(api)

    return all(
        now.value(name, event_type=event_type, status="ok")
        - before.value(name, event_type=event_type, status="ok")
        >= count
        for event_type, count in wanted.items()
    )


async def gauge_is(api: Api, name: str, value: float) -> bool:
    return (await scrape(api)).value(name) == value


# Traces and logs: a node with every request traced and its logs captured.


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert configure_tracing(exporter=exporter, sample_ratio=1.0, environ={})
    yield exporter

    shutdown_tracing()


@pytest.fixture
def log_stream(node_env: dict[str, str]) -> Iterator[io.StringIO]:
    """The node's JSON log lines, DEBUG and up; logging is put back after."""
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    configure_logging("DEBUG", node_id=node_env["NODE_ID"], stream=out)
    # Our own lines, not the drivers' chatter.
    quiet = ("aiokafka", "asyncio", "asyncpg", "aiohttp", "redis", "websockets")
    for name in quiet:
        logging.getLogger(name).setLevel(logging.INFO)
    yield out

    for name in quiet:
        logging.getLogger(name).setLevel(logging.NOTSET)
    handler = telemetry_logging._handler
    if handler is not None:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
async def traced_node(
    spans: InMemorySpanExporter, log_stream: io.StringIO, node_env: dict[str, str]
) -> AsyncIterator[Node]:
    async with open_node(Settings.from_env(node_env)) as started:
        yield started


@pytest.fixture
async def traced_api(traced_node: Node) -> AsyncIterator[Api]:
    async with api_client(http_base(traced_node.settings)) as client:
        yield client


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def trace_of(spans: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]


def move_span(spans: InMemorySpanExporter, game_id: str, ply: int) -> ReadableSpan:
    (found,) = [
        s
        for s in spans.get_finished_spans()
        if s.name == "game.move"
        and s.attributes is not None
        and (s.attributes.get("game.id"), s.attributes.get("game.ply"))
        == (game_id, ply)
    ]

    return found


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_a_move_over_websocket_is_one_trace_down_to_kafka(
    traced_node: Node, traced_api: Api, spans: InMemorySpanExporter
) -> None:
    game_id = await traced_api.create_game("alice", "bob")

    async with watching(ws_url(traced_node.settings), "alice") as white:
        await white.subscribe(game_id)
        ack = await white.move(game_id, "e2e4", 0)
        assert ack["type"] == "ack", ack

    trace_id = move_span(spans, game_id, 0).context.trace_id
    await eventually(
        lambda: len(named(trace_of(spans, trace_id), "kafka.publish")) == 1
    )

    trace = trace_of(spans, trace_id)
    names = sorted(s.name for s in trace)
    assert names == ["db.append", "game.move", "kafka.publish", "ws.message"]
    (message,) = named(trace, "ws.message")
    (move,) = named(trace, "game.move")
    (append,) = named(trace, "db.append")
    (publish,) = named(trace, "kafka.publish")
    # The WebSocket message is the root; each step is a child of the one before.
    assert message.parent is None
    assert parent_id(move) == message.context.span_id
    assert parent_id(append) == move.context.span_id
    assert parent_id(publish) == append.context.span_id
    assert publish.attributes is not None
    assert publish.attributes["event.type"] == "move_played"
    assert publish.attributes["game.id"] == game_id


async def test_the_trace_id_of_a_move_is_in_the_lines_it_logged(
    traced_node: Node,
    traced_api: Api,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
) -> None:
    game_id = await traced_api.create_game("alice", "bob")
    await traced_api.play(game_id, SCHOLARS_MATE[:6])

    async with watching(ws_url(traced_node.settings), mover(6)) as white:
        ack = await white.move(game_id, SCHOLARS_MATE[6], 6)
        assert ack["type"] == "ack", ack

    mate = move_span(spans, game_id, 6)
    trace_id = mate.context.trace_id
    # The mate publishes the move and the end, both in the move's trace.
    await eventually(
        lambda: len(named(trace_of(spans, trace_id), "kafka.publish")) == 2
    )
    (append,) = named(trace_of(spans, trace_id), "db.append")

    (ended,) = [
        line
        for line in log_lines(log_stream)
        if line["event"] == "game_ended" and line.get("game_id") == game_id
    ]
    assert ended["trace_id"] == f"{trace_id:032x}"
    assert ended["span_id"] == f"{append.context.span_id:016x}"
    assert (ended["status"], ended["winner"]) == ("mate", "white")


async def test_log_lines_are_json_with_the_fields_operations_asks_for(
    traced_node: Node,
    traced_api: Api,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
) -> None:
    game_id = await traced_api.create_game("alice", "bob")
    refused = await traced_api.request(
        "POST",
        f"/api/games/{game_id}/moves",
        user="alice",
        body={"uci": "e2e5", "ply": 0},
        headers={"X-Request-ID": "req-illegal-1"},
    )
    assert refused.status >= 400, refused

    lines = log_lines(log_stream)
    assert lines
    for line in lines:
        assert {"timestamp", "level", "event", "service", "node"} <= set(line), line
        assert line["service"] == "live-game-api"
        assert line["node"] == traced_node.settings.node_id

    # A line logged while serving an HTTP request names it, and its span.
    (line,) = [line for line in lines if line["event"] == "http_request_refused"]
    assert line["request_id"] == "req-illegal-1"
    assert line["level"] == "debug"
    (request,) = [
        s
        for s in spans.get_finished_spans()
        if s.name == "http.request"
        and s.attributes is not None
        and s.attributes.get("http.response.status_code") == refused.status
    ]
    assert line["trace_id"] == f"{request.context.trace_id:032x}"
    assert line["span_id"] == f"{request.context.span_id:016x}"
    # Lines logged outside any span carry no trace ids.
    started = next(line for line in lines if line["event"] == "node_started")
    assert "trace_id" not in started


class SpanSink:
    """An OTLP/HTTP endpoint that accepts every export and keeps span names."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.names.extend(span.name for span in scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()

        return web.Response(body=answer, content_type="application/x-protobuf")


@pytest.fixture
async def span_sink() -> AsyncIterator[tuple[str, SpanSink]]:
    sink = SpanSink()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", sink

    await runner.cleanup()


@pytest.mark.parametrize("telemetry", ["true", "false"])
async def test_telemetry_false_turns_tracing_off_and_leaves_metrics_on(
    telemetry: str,
    node_env: dict[str, str],
    spawn_node: Callable[[dict[str, str]], NodeProcess],
    span_sink: tuple[str, SpanSink],
) -> None:
    endpoint, sink = span_sink
    node_env.update(
        TELEMETRY=telemetry,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER_ARG="1.0",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    process = spawn_node(node_env)
    async with api_client(process.http) as api:
        await process.wait_ready(api)
        game_id = await api.create_game("alice", "bob")
        await api.play(game_id, ["e2e4"])
        scraped = await scrape(api)
        await eventually(lambda: published(api, Scrape(""), {"move_played": 1}))

    # A node process of its own: its counters started at zero.
    assert scraped.value("live_game_moves_total", result="valid") == 1
    assert scraped.value("live_game_move_latency_seconds_count") == 1
    # A drained node has exported every span it made.
    process.signal(signal.SIGTERM)
    assert await process.wait_exit() == 0
    if telemetry == "true":
        wanted = {"http.request", "game.move", "db.append", "kafka.publish"}
        assert wanted <= set(sink.names)
    else:
        assert sink.names == []


async def test_a_given_request_id_is_echoed(node: Node, api: Api) -> None:
    reply = await api.request("GET", "/health", headers={"X-Request-ID": "abc-123"})

    assert reply.headers["X-Request-ID"] == "abc-123"


async def test_a_missing_or_unusable_request_id_is_made_and_returned(
    node: Node, api: Api
) -> None:
    first = await api.request("GET", "/health")
    second = await api.request("GET", "/health")
    unusable = await api.request(
        "GET", "/health", headers={"X-Request-ID": "no spaces allowed"}
    )

    made = [r.headers["X-Request-ID"] for r in (first, second, unusable)]
    assert all(made)
    assert len(set(made)) == 3
    assert "no spaces allowed" not in made


async def test_an_error_reply_carries_the_request_id_too(node: Node, api: Api) -> None:
    reply = await api.request(
        "GET", "/api/games/nosuchgame", user="alice", headers={"X-Request-ID": "r-404"}
    )

    assert reply.status >= 400
    assert reply.headers["X-Request-ID"] == "r-404"
