"""Driver errors leave persistence as StorageError; Redis calls are counted."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from livegame.errors import StorageError
from livegame.persistence._translate import redis_errors
from livegame.telemetry import metrics


def redis_calls(status: str) -> float:
    labels = {"service": "redis", "status": status}
    value = metrics.REGISTRY.get_sample_value("external_service_calls_total", labels)

    return value or 0.0


def test_a_redis_call_that_returns_counts_as_ok() -> None:
    before = redis_calls("ok")

    with redis_errors("claim", game_id="g1"):
        pass

    assert redis_calls("ok") == before + 1


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (redis.exceptions.TimeoutError("slow"), "timeout"),
        (redis.exceptions.ConnectionError("gone"), "error"),
        (ConnectionRefusedError(), "error"),
    ],
)
def test_a_failed_redis_call_is_counted_and_translated(
    error: Exception, status: str
) -> None:
    before = redis_calls(status)

    with pytest.raises(StorageError) as raised, redis_errors("claim", game_id="g1"):
        raise error

    assert raised.value.__cause__ is error
    assert raised.value.context["backend"] == "redis"
    assert redis_calls(status) == before + 1


def test_a_cancelled_redis_call_is_not_counted() -> None:
    before = [redis_calls(status) for status in ("ok", "error", "timeout")]

    with pytest.raises(asyncio.CancelledError), redis_errors("claim"):
        raise asyncio.CancelledError

    assert [redis_calls(status) for status in ("ok", "error", "timeout")] == before
