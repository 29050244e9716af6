"""
What the server sends: JSON documents for HTTP responses and WebSocket frames.

Point of view: the server's. Outbound means server to client. Documents are
plain dicts ready for :func:`livegame.transport.codec.encode`; clocks are
``white_ms`` / ``black_ms`` / ``increment_ms``, times are ISO-8601 UTC.

WebSocket frames, each with a ``type``: ``state`` (a whole game, on
subscribe), ``move``, ``draw_offer``, ``draw_decline``, ``end``, ``ack`` and
``error`` (both carry the request's ``rid``) and ``pong``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from livegame.actors.game.events import (
    DrawDeclined,
    DrawOffered,
    GameEnded,
    GameEvent,
    MovePlayed,
)
from livegame.actors.game.messages import (
    ClockView,
    GameSummary,
    GameView,
    MoveResult,
    stored_clock,
)
from livegame.errors import LiveGameError
from livegame.transport.codec import iso_time
from livegame.transport.service import BoardView, GamePage

Document = dict[str, Any]


def clock_json(clock: ClockView | None) -> Document | None:
    if clock is None:
        return None

    return {
        "white_ms": clock.white_ms,
        "black_ms": clock.black_ms,
        "increment_ms": clock.increment_ms,
        "running": clock.running,
    }


def game_json(view: GameView) -> Document:
    """The whole game, as ``GET /api/games/{id}`` returns it."""
    return {
        "id": view.id,
        "white": view.white,
        "black": view.black,
        "status": view.status,
        "winner": view.winner,
        "reason": view.reason,
        "fen": view.fen,
        "ply": view.ply,
        "turn": view.turn,
        "moves": list(view.moves),
        "clock": clock_json(view.clock),
        "draw_offer": view.draw_offer,
        "created_at": iso_time(view.created_at_ms),
        "updated_at": iso_time(view.updated_at_ms),
    }


def summary_json(game: GameSummary) -> Document:
    """One game of a list: its state as of its last event."""
    clock = stored_clock(
        game.white_ms, game.black_ms, game.increment_ms, game.status, game.ply
    )

    return {
        "id": game.id,
        "white": game.white,
        "black": game.black,
        "status": game.status,
        "winner": game.winner,
        "reason": game.reason,
        "fen": game.fen,
        "ply": game.ply,
        "turn": game.turn,
        "clock": clock_json(clock),
        "created_at": iso_time(game.created_at_ms),
        "updated_at": iso_time(game.updated_at_ms),
    }


def page_json(page: GamePage) -> Document:
    return {"games": [summary_json(game) for game in page.games], "next": page.next}


def board_json(board: BoardView) -> Document:
    return {
        "id": board.id,
        "fen": board.fen,
        "ply": board.ply,
        "turn": board.turn,
        "status": board.status,
        "winner": board.winner,
        "clock": clock_json(board.clock),
    }


def move_json(move: MovePlayed) -> Document:
    """One played move, as ``GET /api/games/{id}/moves`` lists it."""
    return {
        "ply": move.ply,
        "uci": move.uci,
        "san": move.san,
        "fen": move.fen,
        "white_ms": move.white_ms,
        "black_ms": move.black_ms,
        "at": iso_time(move.at_ms),
    }


def moves_json(game_id: str, moves: Iterable[MovePlayed]) -> Document:
    return {"id": game_id, "moves": [move_json(move) for move in moves]}


def move_result_json(result: MoveResult) -> Document:
    return {
        "ply": result.ply,
        "uci": result.uci,
        "san": result.san,
        "fen": result.fen,
        "status": result.status,
        "winner": result.winner,
        "reason": result.reason,
        "clock": clock_json(result.clock),
    }


def error_json(error: LiveGameError) -> Document:
    return error.to_dict()


# WebSocket frames.


def state_frame(view: GameView, rid: str | None) -> Document:
    return {"type": "state", "rid": rid, "game": game_json(view)}


def move_frame(move: MovePlayed) -> Document:
    return {"type": "move", "game": move.game_id, **move_json(move)}


def end_frame(end: GameEnded) -> Document:
    return {
        "type": "end",
        "game": end.game_id,
        "ply": end.ply,
        "status": end.status,
        "winner": end.winner,
        "reason": end.reason,
        "white_ms": end.white_ms,
        "black_ms": end.black_ms,
        "at": iso_time(end.at_ms),
    }


def draw_frame(event: DrawOffered | DrawDeclined) -> Document:
    kind = "draw_offer" if isinstance(event, DrawOffered) else "draw_decline"

    return {
        "type": kind,
        "game": event.game_id,
        "ply": event.ply,
        "by": event.by,
        "at": iso_time(event.at_ms),
    }


def event_frame(event: GameEvent) -> Document | None:
    """The frame watchers get for ``event``, or None if they get none."""
    if isinstance(event, MovePlayed):
        return move_frame(event)

    if isinstance(event, GameEnded):
        return end_frame(event)

    if isinstance(event, DrawOffered | DrawDeclined):
        return draw_frame(event)

    # GameCreated happens before anyone can subscribe.
    return None


def ack_frame(game_id: str, rid: str | None, result: Document) -> Document:
    return {"type": "ack", "rid": rid, "game": game_id, "result": result}


def error_frame(error: LiveGameError, rid: str | None) -> Document:
    return {"type": "error", "rid": rid, **error.to_dict()}


def pong_frame(rid: str | None) -> Document:
    return {"type": "pong", "rid": rid}
