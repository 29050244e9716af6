"""Log lines are JSON with the fields OPERATIONS.md asks for."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from livegame.telemetry import logging as telemetry_logging
from livegame.telemetry import tracing
from livegame.telemetry.logging import configure_logging, get_logger, parse_level

Lines = Callable[[], list[dict[str, object]]]


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A stream to log into; logging is put back as it was afterwards."""
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    yield out

    handler = telemetry_logging._handler
    if handler is not None:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def lines(stream: io.StringIO) -> Lines:
    configure_logging("INFO", node_id="api7", stream=stream)

    def read() -> list[dict[str, object]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    return read


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.configure_tracing(exporter=spans, sample_ratio=1.0, environ={})
    yield spans

    tracing.shutdown_tracing()


def test_a_line_is_json_with_time_level_event_service_and_node(lines: Lines) -> None:
    get_logger("livegame.test").info("game_started", white="u1", black="u2")

    (line,) = lines()
    assert line["event"] == "game_started"
    assert line["level"] == "info"
    assert line["service"] == "live-game-api"
    assert line["node"] == "api7"
    assert line["logger"] == "livegame.test"
    assert (line["white"], line["black"]) == ("u1", "u2")
    stamp = datetime.fromisoformat(str(line["timestamp"]))
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_a_module_logger_made_before_configuration_keeps_its_name(
    stream: io.StringIO,
) -> None:
    log = structlog.get_logger("livegame.actors")
    configure_logging("INFO", stream=stream)

    log.warning("actor_crashed", kind="game")

    line = json.loads(stream.getvalue())
    assert (line["logger"], line["kind"]) == ("livegame.actors", "game")


def test_bound_context_reaches_every_line(lines: Lines) -> None:
    log = get_logger()
    with structlog.contextvars.bound_contextvars(
        request_id="r-1", game_id="g42", user_id="u1", connection_id="c9"
    ):
        log.info("move_refused", reason="stale_ply")

    log.info("after")

    first, second = lines()
    assert {
        k: first[k] for k in ("request_id", "game_id", "user_id", "connection_id")
    } == {
        "request_id": "r-1",
        "game_id": "g42",
        "user_id": "u1",
        "connection_id": "c9",
    }
    assert "request_id" not in second


def test_lines_inside_a_span_carry_its_trace_and_span_ids(
    lines: Lines, exporter: InMemorySpanExporter
) -> None:
    log = get_logger()
    with tracing.span("http.request"), tracing.span("game.move") as span:
        log.info("inside")

    log.info("outside")

    inside, outside = lines()
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside
    assert "span_id" not in outside


def test_standard_library_records_come_out_as_the_same_json(
    lines: Lines, exporter: InMemorySpanExporter
) -> None:
    with tracing.span("db.append_batch") as span:
        logging.getLogger("asyncpg.pool").warning("pool %s is full", "main")

    (line,) = lines()
    assert line["event"] == "pool main is full"
    assert line["level"] == "warning"
    assert line["logger"] == "asyncpg.pool"
    assert line["service"] == "live-game-api"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_an_exception_is_logged_with_its_traceback(lines: Lines) -> None:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        get_logger().exception("batch_crashed", size=3)

    (line,) = lines()
    assert line["level"] == "error"
    assert "ZeroDivisionError: boom" in str(line["exception"])


def test_lines_below_the_level_are_dropped(stream: io.StringIO) -> None:
    configure_logging("WARNING", stream=stream)

    get_logger().info("game_started")
    get_logger().debug("message_received")
    logging.getLogger("aiohttp.server").info("noise")
    get_logger().warning("actor_restarted")

    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["actor_restarted"]


def test_debug_level_keeps_debug_lines(stream: io.StringIO) -> None:
    configure_logging("debug", stream=stream)

    get_logger().debug("message_received", kind="move")

    assert json.loads(stream.getvalue())["level"] == "debug"


def test_console_mode_writes_for_people_not_parsers(stream: io.StringIO) -> None:
    configure_logging("INFO", console=True, stream=stream)

    get_logger().info("game_started", game_id="g1")

    text = stream.getvalue()
    assert "game_started" in text
    assert "game_id" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_configuring_twice_leaves_one_handler(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    configure_logging("INFO", stream=stream)

    logging.getLogger("aiokafka").warning("once")

    assert stream.getvalue().count("once") == 1


def test_capture_logs_sees_events_for_assertions(lines: Lines) -> None:
    with structlog.testing.capture_logs() as captured:
        get_logger("livegame.test").info("game_ended", status="mate")

    assert captured == [{"event": "game_ended", "status": "mate", "log_level": "info"}]


@pytest.mark.parametrize(
    ("text", "level"),
    [("INFO", logging.INFO), ("debug", logging.DEBUG), ("Warning", logging.WARNING)],
)
def test_log_level_names_are_read_case_insensitively(text: str, level: int) -> None:
    assert parse_level(text) == level


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL 'LOUD'"):
        parse_level("LOUD")
