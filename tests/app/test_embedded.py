"""Embedded servers: started on free loopback ports, stopped, started again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import redis

from livegame.app.embedded import (
    accepts,
    embedded_services,
    kafka_server,
    redis_server,
)


def answers(port: int) -> bool:
    return accepts(port, timeout=1.0)


@pytest.mark.slow
def test_the_three_servers_start_answer_and_stop(tmp_path: Path) -> None:
    with embedded_services(tmp_path) as urls:
        version = asyncio.run(_server_version(urls.database_url))
        client = redis.Redis.from_url(urls.redis_url)
        try:
            assert client.ping()
        finally:
            client.close()
        kafka_port = int(urls.kafka_bootstrap.rsplit(":", 1)[1])
        assert answers(kafka_port)

    assert version >= 130000
    for url in (urls.database_url, urls.redis_url):
        assert "127.0.0.1" in url
    assert not answers(kafka_port)


async def _server_version(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


def test_a_stopped_server_starts_again_on_its_port(tmp_path: Path) -> None:
    server = redis_server(tmp_path)
    with server:
        port = server.port
        server.stop()
        assert not answers(port)
        server.start()
        assert answers(port)

    assert not server.running


def test_kill_ends_the_process_at_once(tmp_path: Path) -> None:
    server = kafka_server(tmp_path)
    server.start()

    server.kill()

    assert not server.running
    assert not answers(server.port)
