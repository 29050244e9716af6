"""
Fixtures shared by the whole suite.

Services: tests run against real PostgreSQL, Redis and Kafka, never mocks.
PostgreSQL and Redis are the ones on 127.0.0.1:5432 and :6379 when they
answer, else embedded ones started for the session
(:mod:`livegame.app.embedded`); the Kafka broker (Tansu) is always started
for the session. Each session gets its own database, migrated and dropped at
the end, and each test its own Redis key prefix, whose keys are deleted
after the test.

* ``database_url`` - DSN of this session's migrated database
* ``redis_url`` - URL of the Redis server
* ``redis_prefix`` - a key prefix of this test's own, cleaned up after it
* ``redis_client`` - a ``redis.asyncio.Redis`` on ``redis_url``
* ``kafka_bootstrap`` - ``host:port`` of this session's broker
* ``kafka_topic`` - a topic name of this test's own
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio

from livegame.app.embedded import (
    EmbeddedServer,
    accepts,
    kafka_server,
    postgres_server,
)
from livegame.app.embedded import redis_server as embedded_redis_server
from livegame.persistence.migrate import migrate

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # aiohttp, asyncpg and aiokafka run on asyncio only.
    return "asyncio"


def _answers(port: int) -> bool:
    return accepts(port, timeout=1.0)


@pytest.fixture(scope="session")
def services_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data folder of the servers this session starts."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def postgres_admin_url(services_folder: Path) -> Iterator[str]:
    """DSN of the ``postgres`` database of a server this session may use."""
    if _answers(5432):
        yield LOCAL_POSTGRES
        return

    with postgres_server(services_folder) as server:
        yield server.url


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """DSN of a fresh database for this session, migrated, dropped at the end."""
    name = f"livegame_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(postgres_admin_url, f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(_admin(postgres_admin_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def redis_url(services_folder: Path) -> Iterator[str]:
    """URL of the Redis server this session uses."""
    if _answers(6379):
        yield LOCAL_REDIS
        return

    with embedded_redis_server(services_folder) as server:
        yield server.url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after the test."""
    prefix = f"livegame_test_{secrets.token_hex(6)}:"
    yield prefix

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def kafka_broker(services_folder: Path) -> Iterator[EmbeddedServer]:
    """This session's Tansu broker; tests that stop a broker start their own."""
    with kafka_server(services_folder) as server:
        yield server


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: EmbeddedServer) -> str:
    """Bootstrap address (``host:port``) of this session's broker."""
    return kafka_broker.url


@pytest.fixture
def kafka_topic() -> str:
    """A topic name of this test's own (the broker creates it on first use)."""
    return f"live-game.events.test-{secrets.token_hex(4)}"
