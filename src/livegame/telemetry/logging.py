"""
Structured logs: one JSON object per line on standard output.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` (a
short snake_case name), ``service`` and ``node``; ``trace_id`` and ``span_id``
of the current OpenTelemetry span when there is one; and whatever was bound
with :mod:`structlog.contextvars`: ``request_id`` (the X-Request-ID of the
request being served, bound by the HTTP edge) and whatever ids the code at
hand knows (``game_id``, ``user_id``, a connection id). Records
of the standard library's :mod:`logging` (aiohttp, asyncpg, aiokafka) go
through the same processors and come out in the same shape, with ``logger``
naming their source. ``DEBUG=true`` swaps JSON for a human console format.

Levels:

======== ==============================================================
ERROR    a crash or a bug that needs a person: an actor failing outside
         its supervisor's budget, an invariant broken, an unexpected
         exception at an edge.
WARNING  trouble that was handled: an actor restarted, a full mailbox,
         a dropped or refused message, a Kafka or Redis outage being
         retried, a lease lost.
INFO     lifecycle: node, server, connection, game and actor start and
         stop; one summary line when a game or connection closes.
DEBUG    each message and each move. Never an INFO line per move.
======== ==============================================================

Filtering happens in the bound logger before any processor runs, so a
disabled level costs one method call that returns at once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, Final, TextIO, cast

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, FilteringBoundLogger, Processor

SERVICE_NAME: Final = "live-game-api"

_LEVELS: Final = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}

# The handler this module put on the root logger, replaced on reconfiguration.
_handler: logging.Handler | None = None


def parse_level(level: str | int) -> int:
    """
    Return the numeric level for a ``LOG_LEVEL`` value.

    Raises:
        ValueError: the name is not a logging level.
    """
    if isinstance(level, int):
        return level

    try:
        return _LEVELS[level.strip().upper()]
    except KeyError:
        choices = ", ".join(_LEVELS)
        raise ValueError(f"LOG_LEVEL {level!r} is not one of {choices}") from None


def configure_logging(
    level: str | int = "INFO",
    *,
    console: bool = False,
    node_id: str = "",
    service: str = SERVICE_NAME,
    stream: TextIO | None = None,
    cache_loggers: bool = False,
) -> None:
    """
    Configure structlog and the standard library's logging for this process.

    Args:
        level: the ``LOG_LEVEL`` value, a name or a number.
        console: human-readable lines instead of JSON (``DEBUG=true``).
        node_id: this node's id, written as ``node`` on every line.
        service: written as ``service`` on every line.
        stream: where lines go; standard output by default.
        cache_loggers: let each bound logger freeze its configuration on
            first use. Faster, but :func:`structlog.testing.capture_logs`
            no longer sees loggers already used, so tests leave it off.
    """
    global _handler

    numeric_level = parse_level(level)
    out = stream if stream is not None else sys.stdout
    shared = _shared_processors(service, node_id)
    renderer: Processor
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_tty(out))
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)

    structlog.configure(
        processors=[_add_logger_name, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_LoggerFactory(out),
        cache_logger_on_first_use=cache_loggers,
    )

    # Standard library records: same processors, same renderer, same stream.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            *shared,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # Any other root handler would print the same record a second time, in
    # another format.
    for old in list(root.handlers):
        root.removeHandler(old)

    root.addHandler(handler)
    root.setLevel(numeric_level)
    # One access line per request repeats what metrics and traces hold.
    logging.getLogger("aiohttp.access").setLevel(max(numeric_level, logging.WARNING))
    if _handler is not None:
        _handler.close()

    _handler = handler


def get_logger(name: str | None = None, **initial: object) -> FilteringBoundLogger:
    """
    Return a logger; ``name`` becomes the ``logger`` key of its lines.

    Same as ``structlog.get_logger(name, **initial)``, typed.
    """
    args = () if name is None else (name,)

    return cast(FilteringBoundLogger, structlog.get_logger(*args, **initial))


class _NamedWriteLogger(structlog.WriteLogger):
    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _LoggerFactory:
    """Make loggers that write lines to one stream and remember their name."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        name = args[0] if args and isinstance(args[0], str) else ""

        return _NamedWriteLogger(self._file, name)


def _add_logger_name(logger: object, _method: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", "")
    if name:
        event_dict.setdefault("logger", name)

    return event_dict


def _shared_processors(service: str, node_id: str) -> list[Processor]:
    def add_identity(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        event_dict.setdefault("node", node_id)

        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_identity,
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]


def add_trace_context(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add ``trace_id`` and ``span_id`` of the current span, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and "trace_id" not in event_dict:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")

    return event_dict


# Keys that open every JSON line, in this order, so that lines read alike.
_LEADING_KEYS: Final = ("timestamp", "level", "event", "logger")


def _dumps(
    event_dict: dict[str, Any],
    default: Callable[[Any], Any] | None = None,
    **_: Any,
) -> str:
    ordered: dict[str, Any] = {
        key: event_dict[key] for key in _LEADING_KEYS if key in event_dict
    }
    ordered.update(event_dict)

    return orjson.dumps(
        ordered, default=default, option=orjson.OPT_NON_STR_KEYS
    ).decode()


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)

    return bool(isatty and isatty())
