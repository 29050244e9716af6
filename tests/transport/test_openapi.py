"""The OpenAPI document against the routes, and a schemathesis run against the app."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from transport_fakes import SECRET, FakeGames, token_for

from livegame.transport import JwtVerifier, build_app, start_http
from livegame.transport.openapi import openapi_document

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# The fuzzer plays as a service (any game may be created) and an admin.
FUZZER = "root"


def routed(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_documented_path_is_routed():
    app = build_app(FakeGames(), JwtVerifier(SECRET))

    assert routed(app) == documented()


def test_every_operation_documents_its_success_and_auth_errors():
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue

            codes = set(operation["responses"])
            assert any(code.startswith("2") for code in codes), (method, path)
            if operation.get("security") != []:
                assert {"401", "429"} <= codes, (method, path)


def test_every_schema_reference_resolves():
    document = openapi_document()
    schemas = document["components"]["schemas"]

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


class ServerThread:
    """The HTTP app on a loopback port, run by its own event loop in a thread."""

    def __init__(self, games: FakeGames) -> None:
        self._games = games
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),))
        self.url = ""

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = await start_http(
            build_app(self._games, JwtVerifier(SECRET)), "127.0.0.1", 0
        )
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._started.wait(timeout=10), "the server did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    games = FakeGames()
    # Games the fuzzer plays in, so moves and actions reach the rules.
    for _ in range(3):
        games.new_game(white=FUZZER, black="bob")

    with ServerThread(games) as running:
        yield running


SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
HEADERS = {"Authorization": f"Bearer {token_for(FUZZER, 'service', 'admin')}"}


# Only a body or a game id (it has a pattern) can be sent wrong.
CASES = [
    pytest.param(operation, mode, id=f"{mode.value}-{operation.label}")
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE
    or len(operation.body) > 0
    or "{id}" in operation.path
]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_the_fuzzer_finds_no_server_error_and_no_contract_breach(
    server, operation, mode
):
    # A request the schema allows may still break a rule it cannot express:
    # white and black the same user (400), an illegal move (422).
    excluded = [positive_data_acceptance]
    known_game = {"id": "g1"} if "{id}" in operation.path else None

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(
            generation_mode=mode, headers=HEADERS, path_parameters=known_game
        )
        | operation.as_strategy(generation_mode=mode, headers=HEADERS)
    )
    def fuzz(case) -> None:
        response = case.call(base_url=server.url, timeout=10)
        assert response.status_code < 500, (response.status_code, response.text)
        case.validate_response(response, excluded_checks=excluded)

    fuzz()
