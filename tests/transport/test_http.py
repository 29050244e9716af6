"""The HTTP application's middlewares: request ids, error shapes, observation."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from transport_fakes import FakeGames, RecordingObserver, bearer

from livegame.transport import HttpConfig, build_app

pytestmark = pytest.mark.anyio

ALICE = bearer("alice")


class BrokenGames(FakeGames):
    async def board(self, game_id):
        raise RuntimeError("a bug in the node")

    async def ask(self, game_id, message, timeout):
        return "not a reply the protocol allows"


async def test_an_unknown_route_is_404_in_the_contract_shape(client):
    response = await client.get("/api/nothing-here")

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_wrong_method_is_405_with_allow(client):
    response = await client.delete("/api/games", headers=ALICE)

    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_a_given_request_id_is_returned(client):
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})

    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("given", [None, "", "bad id with spaces", "x" * 200])
async def test_a_missing_or_odd_request_id_is_replaced_by_a_fresh_one(client, given):
    headers = {} if given is None else {"X-Request-ID": given}
    response = await client.get("/health", headers=headers)

    made = response.headers["X-Request-ID"]
    assert made != given
    assert len(made) == 32


async def test_errors_carry_the_request_id_too(client):
    response = await client.get("/api/games/g1", headers={"X-Request-ID": "r-1"})

    assert response.status == 401
    assert response.headers["X-Request-ID"] == "r-1"


async def test_a_crash_in_the_node_is_a_500_in_the_contract_shape(verifier):
    app = build_app(BrokenGames(), verifier)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/games/g1/board", headers=ALICE)

        assert response.status == 500
        body = await response.json()
        assert body == {
            "error": {"code": "internal_error", "message": "internal error"}
        }


async def test_a_reply_of_the_wrong_type_is_a_500(verifier):
    app = build_app(BrokenGames(), verifier)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/games/g1", headers=ALICE)

        assert response.status == 500
        assert (await response.json())["error"]["code"] == "internal_error"


async def test_the_observer_hears_each_request_by_route_template(games, verifier):
    observer = RecordingObserver()
    game = games.new_game()
    app = build_app(games, verifier, observer=observer)
    async with TestClient(TestServer(app)) as client:
        await client.get(f"/api/games/{game.id}", headers=ALICE)
        await client.get("/api/games/g404/board", headers=ALICE)
        await client.get("/nowhere")

    assert observer.requests == [
        ("GET", "/api/games/{id}", 200),
        ("GET", "/api/games/{id}/board", 404),
        ("GET", "unmatched", 404),
    ]


async def test_extra_middlewares_run_inside_the_error_mapper(games, verifier):
    @web.middleware
    async def refuse_everything(request, handler):
        raise RuntimeError("a broken tracing middleware")

    app = build_app(games, verifier, middlewares=[refuse_everything])
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health")

        assert response.status == 500
        assert (await response.json())["error"]["code"] == "internal_error"


# Browsers on other origins (CORS).

PAGE = "https://chess.example.com"


@pytest.fixture
async def cors_client(games, verifier):
    config = HttpConfig(cors_origins=frozenset({PAGE, "http://localhost:5173"}))
    async with TestClient(TestServer(build_app(games, verifier, config))) as client:
        yield client


async def test_a_preflight_from_an_allowed_origin_is_answered(cors_client):
    response = await cors_client.options(
        "/api/games",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type"} <= set(allowed.replace(" ", "").split(","))
    assert "Origin" in response.headers.getall("Vary")


async def test_answers_and_refusals_to_an_allowed_origin_are_readable(cors_client):
    created = await cors_client.post(
        "/api/games",
        json={"white": "alice", "black": "bob"},
        headers=ALICE | {"Origin": PAGE},
    )
    refused = await cors_client.get("/api/games/g1", headers={"Origin": PAGE})

    assert created.status == 201
    assert refused.status == 401
    for response in (created, refused):
        assert response.headers["Access-Control-Allow-Origin"] == PAGE
        exposed = response.headers["Access-Control-Expose-Headers"]
        assert set(exposed.split(", ")) == {"Retry-After", "X-Request-ID"}


async def test_another_origin_gets_no_cors_headers(cors_client):
    preflight = await cors_client.options(
        "/api/games",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    plain = await cors_client.get("/health", headers={"Origin": "https://evil.example"})

    assert preflight.status == 405
    for response in (preflight, plain):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Origin" in response.headers.getall("Vary")


async def test_any_origin_when_configured_with_a_star(games, verifier):
    config = HttpConfig(cors_origins=frozenset({"*"}))
    async with TestClient(TestServer(build_app(games, verifier, config))) as client:
        response = await client.get("/health", headers={"Origin": "https://a.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_no_cors_headers_unless_configured(client):
    response = await client.options(
        "/api/games", headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"}
    )

    assert response.status == 405
    assert "Access-Control-Allow-Origin" not in response.headers
