"""Fixtures of the transport tests: a fake node, tokens and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from transport_fakes import SECRET, FakeGames

from livegame.transport import HttpConfig, JwtVerifier, build_app


@pytest.fixture
def games() -> FakeGames:
    return FakeGames()


@pytest.fixture
def verifier() -> JwtVerifier:
    return JwtVerifier(SECRET)


@pytest.fixture
def http_config() -> HttpConfig:
    return HttpConfig(max_body_bytes=1024)


@pytest.fixture
async def client(
    games: FakeGames, verifier: JwtVerifier, http_config: HttpConfig
) -> AsyncIterator[TestClient]:
    app = build_app(games, verifier, http_config)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
