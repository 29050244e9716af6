"""
Conversions between game events and what PostgreSQL and Kafka store.

Times are integer milliseconds in events and ``timestamptz`` in tables; the
outbox payload is the JSON value of the Kafka contract (DESIGN.md): the
``event_id``, ``type``, ``game_id``, ``seq``, ``ply``, the game's ``status``
and ``winner`` after the event, its ``time``, and the fields of its type.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import asyncpg
import orjson

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
    Status,
    event_id,
)
from livegame.actors.game.messages import GameSummary
from livegame.persistence.state import BoardState

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_datetime(ms: int) -> datetime:
    """Return the UTC datetime of ``ms`` milliseconds since the Unix epoch."""
    return _EPOCH + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    """Return ``moment`` as whole milliseconds since the Unix epoch."""
    return (moment - _EPOCH) // _ONE_MS


def iso_time(ms: int) -> str:
    """Return ``ms`` as ISO 8601 UTC with milliseconds, as the payloads carry it."""
    # The writer formats a time per event; the events of a batch share a few
    # seconds, so only the milliseconds are formatted each time.
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}+00:00"


@lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    return to_datetime(second * 1000).isoformat(timespec="seconds")[:-6]


def outbox_payload(
    event: GameEvent, status: Status, winner: Color | None
) -> dict[str, Any]:
    """Return the Kafka value of ``event``, given the game's status after it."""
    payload: dict[str, Any] = {
        "event_id": event_id(event),
        "type": event.type,
        "game_id": event.game_id,
        "seq": event.seq,
        "ply": event.ply,
        "status": status,
        "winner": winner,
        "time": iso_time(event.at_ms),
        "at_ms": event.at_ms,
    }
    payload.update(_type_fields(event))

    return payload


def _type_fields(event: GameEvent) -> dict[str, Any]:
    if isinstance(event, GameCreated):
        clock = None
        if event.initial_ms is not None:
            clock = {"initial_ms": event.initial_ms, "increment_ms": event.increment_ms}
        return {"white": event.white, "black": event.black, "clock": clock}
    if isinstance(event, MovePlayed):
        move = {"uci": event.uci, "san": event.san, "fen": event.fen}
        return {"move": move, "clock": _clock(event.white_ms, event.black_ms)}
    if isinstance(event, DrawOffered | DrawDeclined):
        return {"by": event.by}
    if isinstance(event, GameEnded):
        return {
            "reason": event.reason,
            "clock": _clock(event.white_ms, event.black_ms),
        }
    raise TypeError(f"not a game event: {event!r}")


def _clock(white_ms: int | None, black_ms: int | None) -> dict[str, int] | None:
    if white_ms is None or black_ms is None:
        return None
    return {"white_ms": white_ms, "black_ms": black_ms}


def encode_json(value: dict[str, Any]) -> str:
    """Serialize a payload for a ``jsonb`` column."""
    return orjson.dumps(value).decode()


def decode_json(value: str | bytes) -> dict[str, Any]:
    """Parse a ``jsonb`` column or a Kafka value."""
    decoded: dict[str, Any] = orjson.loads(value)
    return decoded


def state_from_row(row: asyncpg.Record) -> BoardState:
    """Return the state held by a ``games`` row."""
    return BoardState(
        game_id=row["id"],
        fen=row["fen"],
        ply=row["ply"],
        seq=row["last_seq"],
        status=row["status"],
        winner=row["winner"],
        reason=row["reason"],
        white_ms=row["white_ms"],
        black_ms=row["black_ms"],
        increment_ms=row["increment_ms"],
        draw_offer=row["draw_offer"],
        updated_at_ms=to_ms(row["updated_at"]),
    )


def summary_from_row(row: asyncpg.Record) -> GameSummary:
    """Return the listing of a ``games`` row."""
    return GameSummary(
        id=row["id"],
        white=row["white"],
        black=row["black"],
        status=row["status"],
        winner=row["winner"],
        reason=row["reason"],
        fen=row["fen"],
        ply=row["ply"],
        white_ms=row["white_ms"],
        black_ms=row["black_ms"],
        initial_ms=row["initial_ms"],
        increment_ms=row["increment_ms"],
        created_at_ms=to_ms(row["created_at"]),
        updated_at_ms=to_ms(row["updated_at"]),
    )
