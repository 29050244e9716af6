"""
Fixtures of the end-to-end tests: whole nodes against the real services.

* ``node_env`` - the environment of a node of this test (ports, prefix,
  topic, small pools); tests adjust it before starting a node
* ``node`` - a node run in this process by ``open_node``, on free ports
* ``api`` - an HTTP client of ``node``
* ``spawn_node`` - starts nodes as child processes; all are killed after the
  test
* ``postgres`` - a small pool on the session's database, to look at rows
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from node_helpers import AUTH_SECRET, Api, NodeProcess, api_client, http_base

from livegame.app.config import Settings
from livegame.app.embedded import free_port
from livegame.app.node import Node, open_node


@pytest.fixture
def node_env(
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": kafka_topic,
        "AUTH_SECRET": AUTH_SECRET,
        "NODE_ID": f"node-{secrets.token_hex(3)}",
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "WS_PORT": str(free_port()),
        "DB_POOL_MIN": "2",
        "DB_POOL_MAX": "10",
        "REDIS_POOL_MAX": "10",
        "LEASE_TTL_SECONDS": "3",
        "LOG_LEVEL": "WARNING",
        "TELEMETRY": "false",
    }


@pytest.fixture
async def node(node_env: dict[str, str]) -> AsyncIterator[Node]:
    async with open_node(Settings.from_env(node_env)) as started:
        yield started


@pytest.fixture
async def api(node: Node) -> AsyncIterator[Api]:
    async with api_client(http_base(node.settings)) as client:
        yield client


@pytest.fixture
def spawn_node(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], NodeProcess]]:
    """Start a node subprocess with an environment; each is killed at the end."""
    started: list[NodeProcess] = []

    def spawn(env: dict[str, str]) -> NodeProcess:
        log_path = tmp_path / f"{env['NODE_ID']}-{len(started)}.log"
        process = NodeProcess(env, log_path)
        started.append(process)
        process.start()
        return process

    yield spawn

    for process in started:
        process.kill()


@pytest.fixture
async def postgres(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()
