"""
The game routes of the HTTP API, under ``/api/games``.

Handlers parse, authorize and forward one message to the game through the
:class:`~livegame.transport.service.GameService`; every refusal is a
:mod:`livegame.errors` error that the error middleware turns into the
contract's shape, and a refused command changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from livegame.actors.game.events import MovePlayed
from livegame.actors.game.messages import (
    Abort,
    AcceptDraw,
    ClaimDraw,
    DeclineDraw,
    GameAction,
    GameMessage,
    GameView,
    GetGame,
    GetMoves,
    MoveResult,
    OfferDraw,
    PlayMove,
    Resign,
)
from livegame.transport.access import Players, check_can_create
from livegame.transport.codec import decode_object, reject_unknown
from livegame.transport.config import HttpConfig
from livegame.transport.errors import InvalidField, UnexpectedReply
from livegame.transport.http_common import Gate, game_id_of, json_response
from livegame.transport.inbound import (
    parse_create_game,
    parse_game_query,
    parse_move,
)
from livegame.transport.outbound import (
    board_json,
    game_json,
    move_result_json,
    moves_json,
    page_json,
)
from livegame.transport.pgn import MEDIA_TYPE as PGN_MEDIA_TYPE
from livegame.transport.pgn import game_pgn
from livegame.transport.service import GameService, ask_for

_Reply = TypeVar("_Reply")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The path suffix of each game action and the command it sends.
ACTION_ROUTES: dict[str, type[GameAction]] = {
    "resign": Resign,
    "draw/offer": OfferDraw,
    "draw/accept": AcceptDraw,
    "draw/decline": DeclineDraw,
    "draw/claim": ClaimDraw,
    "abort": Abort,
}


class GameRoutes:
    """Handlers of ``/api/games`` bound to one service."""

    def __init__(
        self, service: GameService, gate: Gate, players: Players, config: HttpConfig
    ) -> None:
        self._service = service
        self._gate = gate
        self._players = players
        self._timeout = config.ask_timeout

    def __repr__(self) -> str:
        return f"<GameRoutes {self._players!r}>"

    def routes(self) -> list[web.RouteDef]:
        actions = [
            web.post(f"/api/games/{{id}}/{suffix}", self._action(command))
            for suffix, command in ACTION_ROUTES.items()
        ]

        return [
            web.post("/api/games", self.create),
            web.get("/api/games", self.list_games, allow_head=False),
            web.get("/api/games/{id}", self.game, allow_head=False),
            web.get("/api/games/{id}/board", self.board, allow_head=False),
            web.get("/api/games/{id}/moves", self.moves, allow_head=False),
            web.get("/api/games/{id}/pgn", self.pgn, allow_head=False),
            web.post("/api/games/{id}/moves", self.play),
            *actions,
        ]

    async def create(self, request: web.Request) -> web.Response:
        principal = await self._gate.principal(request)
        body = parse_create_game(await request.read())
        check_can_create(principal, body.white, body.black)
        view = await self._service.create_game(
            body.white, body.black, body.clock, by=principal
        )
        self._players.remember(view)
        response = json_response(game_json(view), status=201)
        response.headers["Location"] = f"/api/games/{view.id}"

        return response

    async def list_games(self, request: web.Request) -> web.Response:
        principal = await self._gate.principal(request)
        if len(request.query) != len(set(request.query)):
            raise InvalidField("each query parameter may be given once")
        query = parse_game_query(request.query, principal.user_id)
        page = await self._service.list_games(query)

        return json_response(page_json(page))

    async def game(self, request: web.Request) -> web.Response:
        await self._gate.principal(request)
        view = await self._ask(game_id_of(request), GetGame(), GameView)
        self._players.remember(view)

        return json_response(game_json(view))

    async def board(self, request: web.Request) -> web.Response:
        await self._gate.principal(request)
        board = await self._service.board(game_id_of(request))

        return json_response(board_json(board))

    async def moves(self, request: web.Request) -> web.Response:
        await self._gate.principal(request)
        game_id = game_id_of(request)
        moves = await self._moves(game_id)

        return json_response(moves_json(game_id, moves))

    async def _moves(self, game_id: str) -> tuple[MovePlayed, ...]:
        moves = await self._ask(game_id, GetMoves(), tuple)
        if not all(isinstance(move, MovePlayed) for move in moves):
            raise UnexpectedReply("GetMoves must answer MovePlayed events")

        return moves

    async def pgn(self, request: web.Request) -> web.Response:
        await self._gate.principal(request)
        game_id = game_id_of(request)
        view = await self._ask(game_id, GetGame(), GameView)
        moves = await self._moves(game_id)
        # A move may have come between the two questions: keep to the view.
        site = f"{request.scheme}://{request.host}/api/games/{game_id}"
        text = game_pgn(view, moves[: view.ply], site=site)

        return web.Response(text=text, content_type=PGN_MEDIA_TYPE, charset="utf-8")

    async def play(self, request: web.Request) -> web.Response:
        principal = await self._gate.principal(request)
        game_id = game_id_of(request)
        body = parse_move(await request.read())
        await self._players.check_player(game_id, principal)
        command = PlayMove(principal.user_id, body.uci, body.ply)
        result = await self._ask(game_id, command, MoveResult)

        return json_response(move_result_json(result))

    def _action(self, command: type[GameAction]) -> _Handler:
        async def act(request: web.Request) -> web.Response:
            principal = await self._gate.principal(request)
            game_id = game_id_of(request)
            _refuse_fields(await request.read())
            await self._players.check_player(game_id, principal)
            view = await self._ask(game_id, command(principal.user_id), GameView)

            return json_response(game_json(view))

        act.__name__ = command.__name__.lower()

        return act

    async def _ask(
        self, game_id: str, message: GameMessage, reply: type[_Reply]
    ) -> _Reply:
        return await ask_for(self._service, game_id, message, reply, self._timeout)


def _refuse_fields(raw: bytes) -> None:
    """Game actions take no fields: an empty body or ``{}``."""
    if raw.strip():
        reject_unknown(decode_object(raw), frozenset(), "action")
