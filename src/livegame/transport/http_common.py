"""
What every HTTP handler shares: the gate (token, then rate limit) and JSON.

The :class:`Gate` authenticates a request from its ``Authorization: Bearer``
header and charges the user's token bucket; handlers get a
:class:`~livegame.transport.auth.Principal` or an error in the contract's
shape.
"""

from __future__ import annotations

from aiohttp import web

from livegame.errors import GameNotFound, RateLimited
from livegame.transport.auth import Principal, TokenVerifier, authenticate, bearer_token
from livegame.transport.codec import encode
from livegame.transport.inbound import GAME_ID_PATTERN
from livegame.transport.ratelimit import BucketTable


class Gate:
    """Authenticate a request and charge its user's rate limit."""

    def __init__(self, verifier: TokenVerifier, buckets: BucketTable) -> None:
        self._verifier = verifier
        self._buckets = buckets

    def __repr__(self) -> str:
        return f"<Gate {self._verifier!r} {self._buckets!r}>"

    async def principal(self, request: web.Request) -> Principal:
        token = bearer_token(request.headers.get("Authorization"))
        principal = await authenticate(self._verifier, token)
        wait = self._buckets.take(principal.user_id)
        if wait > 0:
            raise RateLimited(
                "too many requests; slow down", retry_after=wait, user=principal.user_id
            )

        return principal


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(
        body=encode(document), status=status, content_type="application/json"
    )


def game_id_of(request: web.Request) -> str:
    """The ``{id}`` of the path; one that cannot exist is an unknown game."""
    game_id = request.match_info["id"]
    if not GAME_ID_PATTERN.fullmatch(game_id):
        raise GameNotFound(f"no game {game_id[:64]!r}", game_id=game_id[:64])

    return game_id
