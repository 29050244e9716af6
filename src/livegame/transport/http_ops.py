"""
The operator's routes: liveness, readiness, metrics, the API description and
the admin API over the actor tree.

``/health``, ``/ready``, ``/metrics`` and ``/openapi.json`` need no token;
``/admin/*`` needs the admin role.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from livegame.actors.errors import ActorNotFound
from livegame.errors import Conflict
from livegame.transport.access import check_admin
from livegame.transport.auth import Principal
from livegame.transport.codec import encode
from livegame.transport.errors import NotReady
from livegame.transport.http_common import Gate, json_response
from livegame.transport.openapi import openapi_document
from livegame.transport.service import CheckResult, GameService

log = structlog.get_logger(__name__)

# Render the metrics for a request's Accept header: (body, content type).
MetricsRenderer = Callable[[str | None], tuple[bytes, str]]


def render_default_registry(accept: str | None) -> tuple[bytes, str]:
    """The Prometheus text format of the default registry."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class OpsRoutes:
    """Health, readiness, metrics and the OpenAPI document."""

    def __init__(
        self,
        service: GameService,
        *,
        retry_after_seconds: int,
        render_metrics: MetricsRenderer = render_default_registry,
    ) -> None:
        self._service = service
        self._render_metrics = render_metrics
        self._retry_after = str(retry_after_seconds)
        self._openapi = encode(openapi_document())

    def __repr__(self) -> str:
        return "<OpsRoutes>"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self.health, allow_head=False),
            web.get("/ready", self.ready, allow_head=False),
            web.get("/metrics", self.metrics, allow_head=False),
            web.get("/openapi.json", self.openapi, allow_head=False),
        ]

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        try:
            checks = dict(await self._service.ready())
        except Exception as exc:
            log.warning("readiness_check_failed", exc_info=True)
            checks = {"node": (False, f"{type(exc).__name__}: {exc}")}

        failed = [
            f"{name}: {reason}" for name, (ok, reason) in checks.items() if not ok
        ]
        if not failed:
            return json_response({"status": "ready", "checks": _checks(checks)})

        # The error shape, plus every check so an operator sees what is up.
        error = NotReady("not ready: " + "; ".join(failed))
        body = {**error.to_dict(), "checks": _checks(checks)}
        response = json_response(body, status=error.status)
        response.headers["Retry-After"] = self._retry_after

        return response

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._render_metrics(request.headers.get("Accept"))

        return web.Response(body=body, headers={"Content-Type": content_type})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/json")


def _checks(checks: Mapping[str, CheckResult]) -> dict[str, object]:
    return {name: {"ok": ok, "reason": reason} for name, (ok, reason) in checks.items()}


class AdminRoutes:
    """Read the actor tree, kill an actor (chaos), read the cluster."""

    def __init__(self, service: GameService, gate: Gate) -> None:
        self._service = service
        self._gate = gate

    def __repr__(self) -> str:
        return "<AdminRoutes>"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/actors", self.actors, allow_head=False),
            web.get("/admin/actors/{path:.*}", self.actor, allow_head=False),
            web.post("/admin/actors/{path:.*}/kill", self.kill),
            web.get("/admin/cluster", self.cluster, allow_head=False),
        ]

    async def actors(self, request: web.Request) -> web.Response:
        await self._admin(request)

        return json_response({"actors": list(self._service.actors_snapshot())})

    async def actor(self, request: web.Request) -> web.Response:
        await self._admin(request)
        path = _actor_path(request)
        actor = self._service.actor(path)
        if actor is None:
            raise ActorNotFound(f"no actor at {path}", path=path)

        return json_response(actor)

    async def kill(self, request: web.Request) -> web.Response:
        principal = await self._admin(request)
        path = _actor_path(request)
        if path == "/":
            # The root's failure stops the node: that is SIGTERM's job.
            raise Conflict("the root actor is not killed; stop the node instead")
        if not await self._service.kill(path):
            raise ActorNotFound(f"no actor at {path}", path=path)

        log.warning("actor_killed_by_admin", path=path, admin=principal.user_id)

        return json_response({"path": path, "killed": True})

    async def cluster(self, request: web.Request) -> web.Response:
        await self._admin(request)

        return json_response(dict(await self._service.cluster()))

    async def _admin(self, request: web.Request) -> Principal:
        principal = await self._gate.principal(request)
        check_admin(principal)

        return principal


def _actor_path(request: web.Request) -> str:
    """``/admin/actors/user/games/g1`` names the actor ``/user/games/g1``."""
    return "/" + request.match_info["path"].strip("/")
