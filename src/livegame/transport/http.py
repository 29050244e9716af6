"""
The HTTP edge: an aiohttp application over a :class:`GameService`.

:func:`build_app` assembles the routes of :mod:`http_games` and
:mod:`http_ops` behind three middlewares, outermost first: the request id
(taken from ``X-Request-ID`` or made, and returned), the observer (one report
per request, for metrics), and the error mapper, which gives every failure,
aiohttp's own 404, 405 and 413 included, the contract's error shape.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import SpanKind

from livegame.errors import (
    BadRequest,
    LiveGameError,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from livegame.telemetry.tracing import span, tracing_enabled
from livegame.transport.access import Players
from livegame.transport.auth import TokenVerifier
from livegame.transport.config import HttpConfig, origin_listed
from livegame.transport.errors import MethodNotAllowed, RouteNotFound
from livegame.transport.http_common import Gate, json_response
from livegame.transport.http_games import GameRoutes
from livegame.transport.http_ops import (
    AdminRoutes,
    MetricsRenderer,
    OpsRoutes,
    render_default_registry,
)
from livegame.transport.http_peer import PeerRoutes
from livegame.transport.observer import NullObserver, TransportObserver
from livegame.transport.ratelimit import BucketTable, retry_after_header
from livegame.transport.service import GameService

log = structlog.get_logger(__name__)


REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNMATCHED_ROUTE: Final = "unmatched"


def build_app(
    service: GameService,
    verifier: TokenVerifier,
    config: HttpConfig | None = None,
    *,
    observer: TransportObserver | None = None,
    middlewares: Sequence[Middleware] = (),
    render_metrics: MetricsRenderer = render_default_registry,
) -> web.Application:
    """
    Return the HTTP application.

    Args:
        service: the node, seen through its facade.
        verifier: turns bearer tokens into principals.
        config: limits and timeouts; the defaults when None.
        observer: told about every request, e.g. to count it.
        middlewares: extra middlewares (tracing...), run inside the error
            mapper, so their failures are answered in the contract's shape.
        render_metrics: answers ``GET /metrics`` from the Accept header;
            the default registry in the Prometheus text format by default.
    """
    config = config or HttpConfig()
    gate = Gate(
        verifier, BucketTable(config.user_rate, capacity=config.rate_table_size)
    )
    players = Players(
        service, capacity=config.players_cache_size, timeout=config.ask_timeout
    )
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[
            *([_cors(config.cors_origins)] if config.cors_origins else []),
            _trace,
            _request_id,
            _observe(observer or NullObserver()),
            _map_errors(config.retry_after_seconds),
            *middlewares,
        ],
    )
    app.add_routes(GameRoutes(service, gate, players, config).routes())
    ops = OpsRoutes(
        service,
        retry_after_seconds=config.retry_after_seconds,
        render_metrics=render_metrics,
    )
    app.add_routes(ops.routes())
    app.add_routes(AdminRoutes(service, gate).routes())
    app.add_routes(PeerRoutes(service, verifier).routes())

    return app


async def start_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port``; stop it with ``await runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("http_listening", addresses=runner.addresses)

    return runner


# What a browser's preflight may ask for, and which answer headers its
# page may read.
_CORS_PREFLIGHT: Final = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": (
        f"Authorization, Content-Type, {REQUEST_ID_HEADER}, traceparent, tracestate"
    ),
    "Access-Control-Max-Age": "600",
}
_CORS_EXPOSED: Final = f"Retry-After, {REQUEST_ID_HEADER}"


def _cors(origins: frozenset[str]) -> Middleware:
    """
    Let pages of ``origins`` call the API: answer preflights, label answers.

    Outermost, so that refusals carry the headers too and a page can read
    them. Tokens travel in a header, never a cookie: no credentials mode.
    """
    any_origin = "*" in origins

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        # The Access-Control-Allow-Origin of a listed origin, else None.
        allowed = None
        if origin is not None and origin_listed(origins, origin):
            allowed = "*" if any_origin else origin
        response: web.StreamResponse
        if (
            allowed is not None
            and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            response = web.Response(status=204, headers=_CORS_PREFLIGHT)
        else:
            response = await handler(request)
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = _CORS_EXPOSED
        if not any_origin:
            # The answer differs by origin: caches must keep them apart.
            response.headers.add("Vary", "Origin")

        return response

    return cors


@web.middleware
async def _trace(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the request in an ``http.request`` span joined to the caller's trace."""
    if not tracing_enabled():
        return await handler(request)

    with span("http.request", parent=request.headers, kind=SpanKind.SERVER) as current:
        response = await handler(request)
        if current.is_recording():
            route = request.match_info.route.resource
            current.set_attribute("http.request.method", request.method)
            current.set_attribute(
                "http.route", route.canonical if route is not None else _UNMATCHED_ROUTE
            )
            current.set_attribute("http.response.status_code", response.status)

        return response


@web.middleware
async def _request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await handler(request)

    response.headers[REQUEST_ID_HEADER] = request_id

    return response


def _observe(observer: TransportObserver) -> Middleware:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        route = request.match_info.route.resource
        template = route.canonical if route is not None else _UNMATCHED_ROUTE
        elapsed = time.perf_counter() - started
        observer.request_finished(request.method, template, response.status, elapsed)

        return response

    return observe


def _map_errors(retry_after_seconds: int) -> Middleware:
    @web.middleware
    async def map_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except LiveGameError as exc:
            _log_refusal(request, exc)
            return _error_response(exc, retry_after_seconds)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise

            return _error_response(_from_aiohttp(exc), retry_after_seconds, exc)
        except Exception:
            log.exception(
                "http_handler_failed", method=request.method, path=request.path
            )
            return _error_response(LiveGameError("internal error"), retry_after_seconds)

    return map_errors


def _from_aiohttp(exc: web.HTTPException) -> LiveGameError:
    if exc.status == 404:
        return RouteNotFound("no such route")

    if exc.status == 405:
        return MethodNotAllowed("method not allowed on this route")

    if exc.status == 413:
        return PayloadTooLarge("the request body is too large")

    # Other client errors aiohttp raises while reading a request.
    if exc.status < 500:
        return BadRequest(exc.reason)

    return LiveGameError(exc.reason)


def _log_refusal(request: web.Request, error: LiveGameError) -> None:
    if error.status >= 500 and error.status != 503:
        log.error("http_internal_error", code=error.code, message=error.message)
    else:
        log.debug("http_request_refused", code=error.code, path=request.path)


def _error_response(
    error: LiveGameError,
    retry_after_seconds: int,
    cause: web.HTTPException | None = None,
) -> web.Response:
    response = json_response(error.to_dict(), status=error.status)
    if isinstance(error, RateLimited):
        wait = error.context.get("retry_after", 1.0)
        seconds = wait if isinstance(wait, int | float) else 1.0
        response.headers["Retry-After"] = retry_after_header(seconds)
    elif error.status == 503:
        response.headers["Retry-After"] = str(retry_after_seconds)
    elif isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = "Bearer"

    # 405 must name the methods the route allows.
    if cause is not None and "Allow" in cause.headers:
        response.headers["Allow"] = cause.headers["Allow"]

    return response
