"""
Translation of driver errors into :class:`livegame.errors.StorageError`.

asyncpg, redis-py and aiokafka raise their own exception families; none of
them may leave ``persistence/``. Each adapter wraps its calls in one of these
context managers, which chain the original error with ``from``. Redis calls
are also counted and timed as ``external_service_calls_total{service="redis"}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import redis.exceptions
from aiokafka.errors import KafkaError

from livegame.errors import StorageError
from livegame.telemetry.metrics import CallStatus, record_external_call

# OSError covers refused connections and TimeoutError (an OSError on 3.11).
_POSTGRES_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError)
_REDIS_TIMEOUTS = (redis.exceptions.TimeoutError, TimeoutError)
_KAFKA_ERRORS = (KafkaError, OSError)


@contextmanager
def postgres_errors(operation: str, **context: object) -> Iterator[None]:
    """Raise any PostgreSQL failure inside the block as a StorageError."""
    try:
        yield
    except _POSTGRES_ERRORS as exc:
        raise StorageError(
            f"postgres {operation} failed: {type(exc).__name__}: {exc}",
            backend="postgres",
            operation=operation,
            **context,
        ) from exc


@contextmanager
def redis_errors(operation: str, **context: object) -> Iterator[None]:
    """Raise any Redis failure inside the block as a StorageError; count the call."""
    started = time.perf_counter()
    try:
        yield
    except _REDIS_ERRORS as exc:
        status: CallStatus = "timeout" if isinstance(exc, _REDIS_TIMEOUTS) else "error"
        record_external_call("redis", status, time.perf_counter() - started)
        raise StorageError(
            f"redis {operation} failed: {type(exc).__name__}: {exc}",
            backend="redis",
            operation=operation,
            **context,
        ) from exc

    # Reached only when the block returned: a cancelled call says nothing.
    record_external_call("redis", "ok", time.perf_counter() - started)


@contextmanager
def kafka_errors(operation: str, **context: object) -> Iterator[None]:
    """Raise any Kafka failure inside the block as a StorageError."""
    try:
        yield
    except _KAFKA_ERRORS as exc:
        raise StorageError(
            f"kafka {operation} failed: {type(exc).__name__}: {exc}",
            backend="kafka",
            operation=operation,
            **context,
        ) from exc
