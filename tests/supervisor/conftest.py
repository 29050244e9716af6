"""Fixtures of the supervision tests: captured logs, a running system, a tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog
from supervision_helpers import Gate, Tree

from livegame.actors import ActorSystem


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event of the test, captured instead of printed."""
    # Supervisors log each crash with its traceback; rendering them all would
    # only slow the suite down.
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test") as running:
        try:
            yield running
        finally:
            Gate.open_all()


@pytest.fixture
def tree() -> Tree:
    return Tree()
