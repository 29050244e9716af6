"""Liveness, readiness, metrics and the admin API over the actor tree."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from transport_fakes import bearer

from livegame.transport import build_app

pytestmark = pytest.mark.anyio

ADMIN = bearer("root", "admin")
ALICE = bearer("alice")


async def test_health_answers_ok_without_a_token(client):
    response = await client.get("/health")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_ready_lists_each_check_when_all_pass(client):
    response = await client.get("/ready")

    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgres"] == {"ok": True, "reason": ""}


async def test_ready_is_503_with_the_reasons_when_a_dependency_is_down(client, games):
    games.checks["redis"] = (False, "connection refused")
    response = await client.get("/ready")

    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = await response.json()
    assert body["error"]["code"] == "not_ready"
    assert "redis: connection refused" in body["error"]["message"]
    assert body["checks"]["redis"] == {"ok": False, "reason": "connection refused"}
    assert body["checks"]["postgres"]["ok"] is True


async def test_ready_is_503_when_the_check_itself_fails(client, games):
    async def broken():
        raise ConnectionError("no route to host")

    games.ready = broken
    response = await client.get("/ready")

    assert response.status == 503
    assert "no route to host" in (await response.json())["error"]["message"]


async def test_metrics_are_in_the_prometheus_text_format(client):
    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE" in await response.text()


async def test_the_openapi_document_is_served(client):
    response = await client.get("/openapi.json")

    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/actors"),
        ("GET", "/admin/actors/user/games/g1"),
        ("POST", "/admin/actors/user/games/g1/kill"),
        ("GET", "/admin/cluster"),
    ],
)
async def test_admin_routes_need_the_admin_role(client, games, method, path):
    games.new_game()
    anonymous = await client.request(method, path)
    user = await client.request(method, path, headers=ALICE)

    assert anonymous.status == 401
    assert user.status == 403
    assert (await user.json())["error"]["code"] == "admin_only"
    assert games.killed == []


async def test_the_actor_tree_lists_every_actor(client, games):
    games.new_game()
    response = await client.get("/admin/actors", headers=ADMIN)

    paths = [actor["path"] for actor in (await response.json())["actors"]]
    assert paths == ["/", "/user/games/g1"]


async def test_one_actor_is_found_by_its_path(client, games):
    games.new_game()
    response = await client.get("/admin/actors/user/games/g1", headers=ADMIN)

    assert response.status == 200
    assert (await response.json())["path"] == "/user/games/g1"


async def test_an_unknown_actor_is_404(client):
    response = await client.get("/admin/actors/user/games/nope", headers=ADMIN)

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "actor_not_found"


async def test_killing_an_actor_reaches_the_node(client, games):
    games.new_game()
    response = await client.post("/admin/actors/user/games/g1/kill", headers=ADMIN)

    assert response.status == 200
    assert await response.json() == {"path": "/user/games/g1", "killed": True}
    assert games.killed == ["/user/games/g1"]


async def test_killing_an_unknown_actor_is_404(client, games):
    response = await client.post("/admin/actors/user/nobody/kill", headers=ADMIN)

    assert response.status == 404
    assert games.killed == []


@pytest.mark.parametrize("path", ["/admin/actors//kill", "/admin/actors///kill"])
async def test_the_root_is_not_killed(client, games, path):
    response = await client.post(path, headers=ADMIN)

    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"
    assert games.killed == []


async def test_the_cluster_view_comes_from_the_node(client):
    response = await client.get("/admin/cluster", headers=ADMIN)

    assert response.status == 200
    assert (await response.json())["node"] == "test-node"


async def test_metrics_can_be_rendered_by_telemetry(games, verifier):
    seen = []

    def render(accept: str | None) -> tuple[bytes, str]:
        seen.append(accept)
        return b"# custom\n", "application/openmetrics-text; version=1.0.0"

    app = build_app(games, verifier, render_metrics=render)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics", headers={"Accept": "application/x"})

        assert await response.text() == "# custom\n"
        assert response.headers["Content-Type"].startswith("application/openmetrics")

    assert seen == ["application/x"]
