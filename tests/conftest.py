"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # aiohttp, asyncpg and aiokafka run on asyncio only.
    return "asyncio"
