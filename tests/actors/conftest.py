"""Fixtures of the actor runtime's tests: a running system, a journal, a parent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog
from actor_helpers import Gate, Journal, RecordingParent

from livegame.actors import ActorSystem


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event of the test, captured instead of printed."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test") as running:
        try:
            yield running
        finally:
            # An actor parked by a failed test would keep the system from
            # stopping: let it go.
            Gate.open_all()


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def parent() -> RecordingParent:
    return RecordingParent()
