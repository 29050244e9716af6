"""
The node-to-node route: ``POST /internal/games/{id}/ask``.

A node that receives a command for a game another node serves forwards it
here, with a token holding the ``node`` role and the caller's trace context
in its headers. The body and the answer use :mod:`livegame.transport.peer`.
The command runs on this node only: a node that no longer serves the game
answers 409 ``not_owner`` and the caller looks the owner up again, so a
request never travels in a circle.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from livegame.errors import Forbidden, LiveGameError
from livegame.transport.auth import NODE, TokenVerifier, authenticate, bearer_token
from livegame.transport.codec import decode_object
from livegame.transport.http_common import game_id_of, json_response
from livegame.transport.peer import decode_message, encode_error, encode_reply

PEER_PATH = "/internal/games/{id}/ask"


class PeerService(Protocol):
    async def ask_here(self, game_id: str, message: Any, timeout: float) -> object:
        """Ask the game's actor on this node, claiming the game if it is free."""
        ...


class PeerRoutes:
    def __init__(self, service: Any, verifier: TokenVerifier) -> None:
        self._service = service
        self._verifier = verifier

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PEER_PATH, self.ask)]

    async def ask(self, request: web.Request) -> web.Response:
        token = bearer_token(request.headers.get("Authorization"))
        principal = await authenticate(self._verifier, token)
        if NODE not in principal.roles:
            raise Forbidden("this route is for the cluster's nodes")

        game_id = game_id_of(request)
        body = decode_object(await request.read())
        message = decode_message(body.get("message"))
        timeout = float(body.get("timeout", 5.0))
        try:
            reply = await self._service.ask_here(game_id, message, min(timeout, 30.0))
        except LiveGameError as error:
            return json_response(encode_error(error), status=error.status)

        return json_response(encode_reply(reply))
