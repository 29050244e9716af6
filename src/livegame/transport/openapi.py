"""
The OpenAPI 3.1 description of the HTTP API, served at ``/openapi.json``.

Written by hand, not derived from the router, so that a test comparing the
two catches a route added without documentation or documented without a
route. Limits come from :mod:`livegame.transport.inbound`.
"""

from __future__ import annotations

from typing import Any

from livegame.actors.game.events import STATUSES
from livegame.transport import inbound, pgn

Schema = dict[str, Any]

_NULLABLE_COLOR: Schema = {"enum": ["white", "black", None]}
_STATUS: Schema = {"enum": list(STATUSES)}
_TIME: Schema = {"type": "string", "format": "date-time"}

# status -> (description, example codes)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Malformed input", "malformed_json, invalid_field, bad_request"),
    401: ("No or bad token", "unauthorized"),
    403: ("Not allowed", "not_a_player, admin_only, forbidden"),
    404: ("Unknown game or actor", "game_not_found, actor_not_found"),
    409: ("Conflict", "stale_ply, not_your_turn, game_over, not_owner, conflict"),
    413: ("Body too large", "payload_too_large"),
    422: ("Illegal move", "illegal_move"),
    429: ("Rate limited; see Retry-After", "rate_limited"),
    503: ("Overloaded or a dependency down; see Retry-After", "overloaded"),
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], *, closed: bool = True) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": not closed,
    }


def _int(low: int = 0, high: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high

    return schema


def _string(pattern: str | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = f"^{pattern}$"

    return schema


def _schemas() -> dict[str, Schema]:
    clock = _object(
        {
            "white_ms": _int(),
            "black_ms": _int(),
            "increment_ms": _int(),
            "running": _NULLABLE_COLOR,
        }
    )
    move = _object(
        {
            "ply": _int(1),
            "uci": _string(),
            "san": _string(),
            "fen": _string(),
            "white_ms": _nullable(_int()),
            "black_ms": _nullable(_int()),
            "at": _TIME,
        }
    )
    clock_request = _object(
        {
            "initial": _int(1, inbound.MAX_INITIAL_SECONDS),
            "increment": _int(0, inbound.MAX_INCREMENT_SECONDS),
        }
    )
    user = _string(inbound.USER_ID_PATTERN.pattern)
    create = _object(
        {"white": user, "black": user, "clock": _nullable(_ref("ClockRequest"))}
    )
    create["required"] = ["white", "black"]
    error = _object(
        {"error": _object({"code": _string(), "message": _string()})}, closed=False
    )
    check = _object({"ok": {"type": "boolean"}, "reason": _string()})
    game = {
        "id": _string(),
        "white": _string(),
        "black": _string(),
        "status": _STATUS,
        "winner": _NULLABLE_COLOR,
        "reason": _nullable(_string()),
        "fen": _string(),
        "ply": _int(),
        "turn": {"enum": ["white", "black"]},
        "moves": {"type": "array", "items": _string()},
        "clock": _nullable(_ref("Clock")),
        "draw_offer": _NULLABLE_COLOR,
        "created_at": _TIME,
        "updated_at": _TIME,
    }

    return {
        "Error": error,
        "Clock": clock,
        "ClockRequest": clock_request,
        "CreateGame": create,
        "PeerReply": _object({"kind": _string()}, closed=False),
        "PeerRequest": _object(
            {
                "message": _object(
                    {"kind": _string(), "fields": {"type": "object"}}, closed=False
                ),
                "timeout": {"type": "number", "minimum": 0, "maximum": 30},
            }
        ),
        "MoveRequest": _object(
            {
                "uci": _string(inbound.UCI_PATTERN.pattern),
                "ply": _int(0, inbound.MAX_PLY),
            }
        ),
        "Game": _object(game),
        "GameSummary": _object(
            {k: v for k, v in game.items() if k not in {"moves", "draw_offer"}}
        ),
        "GamePage": _object(
            {
                "games": {"type": "array", "items": _ref("GameSummary")},
                "next": _nullable(_string(inbound.GAME_ID_PATTERN.pattern)),
            }
        ),
        "Board": _object(
            {
                "id": _string(),
                "fen": _string(),
                "ply": _int(),
                "turn": {"enum": ["white", "black"]},
                "status": _STATUS,
                "winner": _NULLABLE_COLOR,
                "clock": _nullable(_ref("Clock")),
            }
        ),
        "Move": move,
        "Moves": _object({"id": _string(), "moves": {"type": "array", "items": move}}),
        "MoveResult": _object(
            {
                "ply": _int(1),
                "uci": _string(),
                "san": _string(),
                "fen": _string(),
                "status": _STATUS,
                "winner": _NULLABLE_COLOR,
                "reason": _nullable(_string()),
                "clock": _nullable(_ref("Clock")),
            }
        ),
        "Health": _object({"status": {"const": "ok"}}),
        "Ready": _object(
            {
                "status": {"const": "ready"},
                "checks": {"type": "object", "additionalProperties": check},
            }
        ),
        "NotReady": {
            **error,
            "properties": {
                **error["properties"],
                "checks": {"type": "object", "additionalProperties": check},
            },
        },
        "Actor": {
            "type": "object",
            "description": "path, kind, status, mailbox depth and capacity, "
            "messages processed, restarts, last failure, uptime",
            "properties": {"path": _string()},
            "required": ["path"],
        },
        "Actors": _object({"actors": {"type": "array", "items": _ref("Actor")}}),
        "Killed": _object({"path": _string(), "killed": {"const": True}}),
        "Cluster": {"type": "object", "description": "nodes and their leases"},
    }


def _json(schema: Schema, description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _operation(
    summary: str,
    ok: tuple[int, str],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    public: bool = False,
) -> Schema:
    status, schema = ok
    responses: Schema = {str(status): _json(_ref(schema), summary)}
    for code in errors:
        description, codes = _ERRORS[code]
        responses[str(code)] = _json(_ref("Error"), f"{description} ({codes})")
        if code in (429, 503):
            responses[str(code)]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "required": True}
            }

    operation: Schema = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }

    if public:
        operation["security"] = []

    return operation


def _param(name: str, description: str, pattern: str | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": _string(pattern),
    }


_READ = (401, 404, 429, 503)
_ACT = (400, 401, 403, 404, 409, 413, 429, 503)
_ADMIN = (401, 403, 429)
_GAME_ID = _param("id", "the game id", inbound.GAME_ID_PATTERN.pattern)
_ACTOR_PATH = _param("path", "the actor's path without its leading slash")
_ACTIONS = {
    "resign": "Resign the game",
    "draw/offer": "Offer a draw",
    "draw/accept": "Accept the opponent's draw offer",
    "draw/decline": "Decline the opponent's draw offer",
    "draw/claim": "Claim a draw (threefold repetition, fifty moves)",
    "abort": "Abort a game that has barely started",
}


def _paths() -> dict[str, Schema]:
    game = {"parameters": [_GAME_ID]}
    paths: dict[str, Schema] = {
        "/api/games": {
            "get": _list_operation(),
            "post": _operation(
                "Create a game",
                (201, "Game"),
                (400, 401, 403, 413, 429, 503),
                body="CreateGame",
            ),
        },
        "/api/games/{id}": {
            **game,
            "get": _operation("The game", (200, "Game"), _READ),
        },
        "/api/games/{id}/board": {
            **game,
            "get": _operation("The board, cheaply", (200, "Board"), _READ),
        },
        "/api/games/{id}/pgn": {
            **game,
            "get": _text_operation(
                "The game as PGN",
                pgn.MEDIA_TYPE,
                "The game as PGN, with each mover's clock",
                _READ,
            ),
        },
        "/api/games/{id}/moves": {
            **game,
            "get": _operation("The moves played", (200, "Moves"), _READ),
            "post": _operation(
                "Play a move", (200, "MoveResult"), (*_ACT, 422), body="MoveRequest"
            ),
        },
    }
    for suffix, summary in _ACTIONS.items():
        paths[f"/api/games/{{id}}/{suffix}"] = {
            **game,
            "post": _operation(summary, (200, "Game"), _ACT),
        }

    paths.update(_ops_paths())

    return paths


def _list_operation() -> Schema:
    operation = _operation(
        "A player's games, newest first", (200, "GamePage"), (400, 401, 429, 503)
    )
    statuses = list(inbound.STATUS_GROUPS)
    limit = _int(1, inbound.MAX_LIST_LIMIT) | {"default": 20}
    operation["parameters"] = [
        _query("player", "whose games (default: the caller)", _string()),
        _query("status", "started, ended, or one status", {"enum": statuses}),
        _query("limit", "games per page", limit),
        _query(
            "before",
            "the previous page's next: games created before that one",
            _string(inbound.GAME_ID_PATTERN.pattern),
        ),
    ]

    return operation


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _text_operation(
    summary: str,
    media_type: str,
    description: str,
    errors: tuple[int, ...],
    *,
    public: bool = False,
) -> Schema:
    """An operation whose 200 answer is text of ``media_type``, not JSON."""
    operation = _operation(summary, (200, "Health"), errors, public=public)
    operation["responses"]["200"] = {
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}}},
    }

    return operation


def _ops_paths() -> dict[str, Schema]:
    ready = _operation(
        "Readiness: PostgreSQL and Redis", (200, "Ready"), (), public=True
    )
    ready["responses"]["503"] = _json(_ref("NotReady"), "A dependency is down")
    ready["responses"]["503"]["headers"] = {
        "Retry-After": {"schema": {"type": "integer"}, "required": True}
    }
    metrics = _text_operation(
        "Prometheus metrics", "text/plain", "Prometheus text format", (), public=True
    )
    openapi = _operation("This document", (200, "Health"), (), public=True)
    openapi["responses"]["200"] = _json({"type": "object"}, "OpenAPI 3.1")

    return {
        "/health": {"get": _operation("Liveness", (200, "Health"), (), public=True)},
        "/ready": {"get": ready},
        "/metrics": {"get": metrics},
        "/openapi.json": {"get": openapi},
        "/admin/actors": {"get": _operation("The actor tree", (200, "Actors"), _ADMIN)},
        "/admin/actors/{path}": {
            "parameters": [_ACTOR_PATH],
            "get": _operation("One actor", (200, "Actor"), (*_ADMIN, 404)),
        },
        "/admin/actors/{path}/kill": {
            "parameters": [_ACTOR_PATH],
            "post": _operation(
                "Kill an actor; its supervisor restores it (never the root)",
                (200, "Killed"),
                (*_ADMIN, 404, 409, 503),
            ),
        },
        "/admin/cluster": {
            "get": _operation("Nodes and leases", (200, "Cluster"), (*_ADMIN, 503))
        },
        "/internal/games/{id}/ask": {
            "parameters": [_GAME_ID],
            "post": _operation(
                "Node to node: run a forwarded command on the game's node",
                (200, "PeerReply"),
                (400, 401, 403, 404, 409, 422, 429, 503),
                body="PeerRequest",
            ),
        },
    }


def openapi_document() -> Schema:
    """Return the OpenAPI 3.1 document of every HTTP route."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "live-game-api",
            "version": "0.1.0",
            "description": "Live chess games. Errors are "
            '{"error": {"code": ..., "message": ...}}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
