"""
What clients send: HTTP request bodies and WebSocket frames.

Point of view: the server's. Inbound means client to server; each message is
parsed strictly (no unknown fields, no wrong types) into a frozen dataclass,
and the limits below are the contract's (the OpenAPI document reuses them).
A UCI string of the wrong shape is an illegal move (422), like a well-formed
move the position does not allow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from livegame.actors.game.events import ENDED_STATUSES, Status
from livegame.actors.game.messages import (
    Abort,
    AcceptDraw,
    ClaimDraw,
    DeclineDraw,
    GameAction,
    OfferDraw,
    Resign,
)
from livegame.errors import IllegalMove
from livegame.transport.codec import (
    JsonObject,
    decode_object,
    read_int,
    read_optional_int,
    read_optional_object,
    read_optional_str,
    read_str,
    reject_unknown,
)
from livegame.transport.errors import InvalidField, MalformedJSON, UnknownType
from livegame.transport.service import GameQuery

GAME_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
USER_ID_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,64}")
UCI_PATTERN: Final = re.compile(r"[a-h][1-8][a-h][1-8][qrbn]?")
MAX_PLY: Final = 100_000
MAX_INITIAL_SECONDS: Final = 10_800
MAX_INCREMENT_SECONDS: Final = 600
MAX_RID_CHARS: Final = 64

# The WebSocket action types and the game command each one becomes.
ACTIONS: Final[dict[str, type[GameAction]]] = {
    "resign": Resign,
    "draw_offer": OfferDraw,
    "draw_accept": AcceptDraw,
    "draw_decline": DeclineDraw,
    "draw_claim": ClaimDraw,
    "abort": Abort,
}


@dataclass(frozen=True, slots=True)
class CreateGameBody:
    white: str
    black: str
    # (initial seconds, increment seconds), or None for an untimed game.
    clock: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class MoveBody:
    uci: str
    # The ply the player has seen.
    ply: int


@dataclass(frozen=True, slots=True)
class SubscribeFrame:
    game: str
    since: int | None
    rid: str | None


@dataclass(frozen=True, slots=True)
class UnsubscribeFrame:
    game: str
    rid: str | None


@dataclass(frozen=True, slots=True)
class MoveFrame:
    game: str
    move: MoveBody
    rid: str | None


@dataclass(frozen=True, slots=True)
class ActionFrame:
    game: str
    action: type[GameAction]
    # The wire name of the action, e.g. "draw_offer".
    name: str
    rid: str | None


@dataclass(frozen=True, slots=True)
class PingFrame:
    rid: str | None


ClientFrame = SubscribeFrame | UnsubscribeFrame | MoveFrame | ActionFrame | PingFrame


def parse_create_game(raw: bytes) -> CreateGameBody:
    """Parse the body of ``POST /api/games``."""
    body = decode_object(raw)
    reject_unknown(body, frozenset({"white", "black", "clock"}), "game")
    white = read_str(body, "white", pattern=USER_ID_PATTERN)
    black = read_str(body, "black", pattern=USER_ID_PATTERN)
    if white == black:
        raise InvalidField("white and black must be different players")

    return CreateGameBody(white, black, _clock(read_optional_object(body, "clock")))


def _clock(clock: JsonObject | None) -> tuple[int, int] | None:
    if clock is None:
        return None

    reject_unknown(clock, frozenset({"initial", "increment"}), "clock")
    initial = read_int(clock, "initial", low=1, high=MAX_INITIAL_SECONDS)
    increment = read_int(clock, "increment", low=0, high=MAX_INCREMENT_SECONDS)

    return initial, increment


# What ``status=`` of ``GET /api/games`` may name: a status, or one of these.
STATUS_GROUPS: Final[dict[str, frozenset[Status]]] = {
    "started": frozenset({"started"}),
    "ended": frozenset(ENDED_STATUSES),
    **{status: frozenset({status}) for status in ENDED_STATUSES},
}
MAX_LIST_LIMIT: Final = 100


def parse_game_query(params: Mapping[str, str], caller: str) -> GameQuery:
    """Parse the query of ``GET /api/games``; the player defaults to the caller."""
    allowed = frozenset({"player", "status", "limit", "before"})
    reject_unknown(dict(params), allowed, "query")
    player = params.get("player", caller)
    if not USER_ID_PATTERN.fullmatch(player):
        raise InvalidField("parameter 'player' has an invalid format")

    statuses = None
    if "status" in params:
        statuses = STATUS_GROUPS.get(params["status"])
        if statuses is None:
            names = ", ".join(STATUS_GROUPS)
            raise InvalidField(f"parameter 'status' must be one of {names}")

    limit = 20
    if "limit" in params:
        text = params["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
            raise InvalidField(
                f"parameter 'limit' must be an integer from 1 to {MAX_LIST_LIMIT}"
            )
        limit = int(text)

    before = params.get("before")
    if before is not None and not GAME_ID_PATTERN.fullmatch(before):
        raise InvalidField("parameter 'before' must be a game id")

    return GameQuery(player, statuses, limit, before)


def parse_move(raw: bytes) -> MoveBody:
    """Parse the body of ``POST /api/games/{id}/moves``."""
    body = decode_object(raw)
    reject_unknown(body, frozenset({"uci", "ply"}), "move")

    return _move(body)


def _move(document: JsonObject) -> MoveBody:
    uci = read_str(document, "uci", max_len=16)
    ply = read_int(document, "ply", low=0, high=MAX_PLY)
    if not UCI_PATTERN.fullmatch(uci):
        raise IllegalMove(f"'{uci}' is not a UCI move such as e2e4 or e7e8q")

    return MoveBody(uci, ply)


def parse_frame(raw: str) -> ClientFrame:
    """Parse one WebSocket text frame."""
    frame = decode_object(raw)
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise InvalidField("field 'type' is required and must be a string")

    rid = read_optional_str(frame, "rid", max_len=MAX_RID_CHARS)
    if kind == "ping":
        reject_unknown(frame, frozenset({"type", "rid"}), kind)
        return PingFrame(rid)

    if kind == "subscribe":
        reject_unknown(frame, frozenset({"type", "rid", "game", "since"}), kind)
        since = read_optional_int(frame, "since", low=0, high=MAX_PLY)
        return SubscribeFrame(_game(frame), since, rid)

    if kind == "unsubscribe":
        reject_unknown(frame, frozenset({"type", "rid", "game"}), kind)
        return UnsubscribeFrame(_game(frame), rid)

    if kind == "move":
        allowed = frozenset({"type", "rid", "game", "uci", "ply"})
        reject_unknown(frame, allowed, kind)
        return MoveFrame(_game(frame), _move(frame), rid)

    if kind in ACTIONS:
        reject_unknown(frame, frozenset({"type", "rid", "game"}), kind)
        return ActionFrame(_game(frame), ACTIONS[kind], kind, rid)

    raise UnknownType(f"unknown message type '{kind[:32]}'")


def _game(frame: JsonObject) -> str:
    return read_str(frame, "game", pattern=GAME_ID_PATTERN)


def rid_of(raw: str) -> str | None:
    """Best-effort ``rid`` of a frame that failed to parse, for its error."""
    try:
        frame = decode_object(raw)
    except MalformedJSON:
        return None

    rid = frame.get("rid")

    return rid if isinstance(rid, str) and len(rid) <= MAX_RID_CHARS else None
