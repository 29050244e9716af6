"""
The wire between nodes: game messages, replies, events and errors as JSON.

Point of view: either node's; a request goes from the node that received a
client's command to the node that serves the game, and the reply (or the
refusal) comes back. Game events travel the same way through Redis pub/sub to
the watchers on other nodes. Only the types named here cross: a peer can
never make a node build anything else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from livegame.actors.game.events import (
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
)
from livegame.actors.game.messages import (
    Abort,
    AcceptDraw,
    ClaimDraw,
    ClockView,
    DeclineDraw,
    GameView,
    GetGame,
    GetMoves,
    MoveResult,
    OfferDraw,
    PlayMove,
    Resign,
    Subscribed,
)
from livegame.errors import BadRequest, Conflict, LiveGameError, Overloaded


@dataclasses.dataclass(frozen=True, slots=True)
class WatchFromPeer:  # -> Subscribed
    """
    A node asks the game's node to publish the game's events to Redis.

    Its own watchers then follow the game through pub/sub; the reply holds
    the game and the moves after ``since``, like a local subscribe.
    """

    since: int | None = None


# Commands that may be forwarded; subscriptions go through pub/sub instead.
_MESSAGES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        PlayMove,
        Resign,
        OfferDraw,
        AcceptDraw,
        DeclineDraw,
        ClaimDraw,
        Abort,
        GetGame,
        GetMoves,
        WatchFromPeer,
    )
}
_EVENTS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (GameCreated, MovePlayed, DrawOffered, DrawDeclined, GameEnded)
}


def _error_classes() -> dict[str, type[LiveGameError]]:
    found: dict[str, type[LiveGameError]] = {}
    pending: list[type[LiveGameError]] = [LiveGameError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


class PeerProtocolError(BadRequest):
    code = "bad_peer_request"


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _build(table: dict[str, type[Any]], document: Any) -> Any:
    if not isinstance(document, dict):
        raise PeerProtocolError("a peer sent something that is not an object")
    cls = table.get(document.get("kind", ""))
    if cls is None:
        raise PeerProtocolError(f"a peer sent an unknown kind {document.get('kind')!r}")
    try:
        return cls(**document.get("fields", {}))
    except TypeError as error:
        raise PeerProtocolError(f"a peer sent a bad {cls.__name__}: {error}") from None


def encode_message(message: Any) -> dict[str, Any]:
    """Return a forwardable command as JSON-ready data."""
    kind = type(message).__name__
    if kind not in _MESSAGES:
        raise TypeError(f"{kind} cannot be forwarded to another node")
    return {"kind": kind, "fields": _fields(message)}


def decode_message(document: Any) -> Any:
    """Rebuild a command a peer forwarded; refuse anything else."""
    return _build(_MESSAGES, document)


def encode_event(event: GameEvent) -> bytes:
    return orjson.dumps({"kind": type(event).__name__, "fields": _fields(event)})


def decode_event(raw: bytes | str) -> GameEvent:
    event: GameEvent = _build(_EVENTS, orjson.loads(raw))
    return event


def encode_reply(reply: Any) -> dict[str, Any]:
    """Return a game actor's reply as JSON-ready data."""
    if isinstance(reply, GameView | MoveResult):
        return {"kind": type(reply).__name__, "fields": dataclasses.asdict(reply)}
    if isinstance(reply, Subscribed):
        return {
            "kind": "Subscribed",
            "view": encode_reply(reply.view),
            "missed": encode_reply(reply.missed),
        }
    if isinstance(reply, tuple) and all(isinstance(m, MovePlayed) for m in reply):
        return {"kind": "moves", "items": [_fields(m) for m in reply]}
    if reply is None:
        return {"kind": "none"}
    raise TypeError(f"{type(reply).__name__} cannot be sent to another node")


def decode_reply(document: Any) -> Any:
    """Rebuild a reply from its JSON-ready data."""
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind == "none":
        return None
    if kind == "Subscribed":
        return Subscribed(
            decode_reply(document["view"]), decode_reply(document["missed"])
        )
    if kind == "moves":
        return tuple(MovePlayed(**item) for item in document["items"])
    if kind in ("GameView", "MoveResult"):
        fields = dict(document["fields"])
        clock = fields.get("clock")
        fields["clock"] = None if clock is None else ClockView(**clock)
        if kind == "GameView":
            fields["moves"] = tuple(fields["moves"])
            return GameView(**fields)
        return MoveResult(**fields)
    raise PeerProtocolError(f"a peer replied with an unknown kind {kind!r}")


def encode_error(error: LiveGameError) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message}}


def decode_error(document: Any, status: int) -> LiveGameError:
    """Rebuild the refusal a peer sent, as the same error class where known."""
    body = document.get("error", {}) if isinstance(document, dict) else {}
    code = str(body.get("code", "internal_error"))
    message = str(body.get("message", f"a peer answered {status}"))
    cls = _error_classes().get(code)
    if cls is None:
        # A code this node does not know: keep the kind of failure.
        cls = {409: Conflict, 503: Overloaded}.get(status, BadRequest)
        if status >= 500 and status != 503:
            cls = LiveGameError
    return cls(message)
