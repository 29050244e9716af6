"""
A game's state after its last journaled event, and how events change it.

This is what the ``games`` row and the Redis cache hold: enough to answer
``GET /board`` and to check an append, without the move list. The functions
here are pure. :func:`row_change` says what an append does to the row and
where it must find the row; the writer's statement applies it under the
row's lock only if the row is there and not fenced, so that verdict holds for
the whole transaction. :func:`check_append` gives the reason for a refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import chess

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
    Status,
    color_to_move,
)
from livegame.errors import Conflict, Fenced, GameOver


@dataclass(frozen=True, slots=True)
class BoardState:
    """The latest state of one game, as stored and cached."""

    game_id: str
    fen: str
    ply: int
    # The seq of the last event: a cached state agrees with PostgreSQL when
    # its seq equals the row's last_seq.
    seq: int
    status: Status
    winner: Color | None
    reason: str | None
    white_ms: int | None
    black_ms: int | None
    increment_ms: int
    draw_offer: Color | None
    updated_at_ms: int

    @property
    def turn(self) -> Color:
        return color_to_move(self.ply)


@dataclass(frozen=True, slots=True)
class OwnedBoard:
    """A game's state plus the owner epoch that fences its writers."""

    state: BoardState
    epoch: int


class RowChange(NamedTuple):
    """
    What appending some events does to a game's row, whatever else it holds.

    It applies to a row whose last seq is ``after_seq``, whose ply is
    ``after_ply`` when the events hold a move, whose game has not ended, and
    whose owner epoch is not newer than the append's: then every check of
    :func:`check_append` passes. A None ``fen`` or ``ply`` (no move), a false
    ``clocks`` and a None ``ended`` leave those columns as they are.
    """

    after_seq: int
    after_ply: int | None
    seq: int
    fen: str | None
    ply: int | None
    # Whether the events set the clocks (a move or the end does).
    clocks: bool
    white_ms: int | None
    black_ms: int | None
    ended: GameEnded | None
    draw_offer: Color | None
    updated_at_ms: int


def row_change(events: Sequence[GameEvent]) -> RowChange:
    """
    Return what appending ``events``, in order, does to their game's row.

    Raises:
        Conflict: there are no events, one is a game_created event, or one
            does not follow the one before it (seq, or ply between moves).
        GameOver: an event follows the game's end.
    """
    if not events:
        raise Conflict("an append needs events")

    first = events[0]
    seq = first.seq - 1
    after_ply: int | None = None
    fen: str | None = None
    ply: int | None = None
    clocks = False
    white_ms: int | None = None
    black_ms: int | None = None
    ended: GameEnded | None = None
    draw_offer: Color | None = None
    for event in events:
        if ended is not None:
            raise GameOver("the game has ended", game_id=event.game_id, seq=event.seq)
        if event.seq != seq + 1:
            raise Conflict(
                f"seq {event.seq} leaves a gap after {seq}",
                game_id=event.game_id,
                seq=event.seq,
            )
        seq = event.seq
        draw_offer = None
        if isinstance(event, MovePlayed):
            if ply is None:
                after_ply = event.ply - 1
            elif event.ply != ply + 1:
                raise Conflict(
                    f"ply {event.ply} leaves a gap after {ply}",
                    game_id=event.game_id,
                    ply=event.ply,
                    move=event.uci,
                )
            fen, ply = event.fen, event.ply
            clocks, white_ms, black_ms = True, event.white_ms, event.black_ms
        elif isinstance(event, DrawOffered):
            draw_offer = event.by
        elif isinstance(event, GameEnded):
            ended = event
            clocks, white_ms, black_ms = True, event.white_ms, event.black_ms
        elif not isinstance(event, DrawDeclined):
            raise Conflict(
                "a game_created event cannot be appended",
                game_id=event.game_id,
                seq=event.seq,
            )

    return RowChange(
        first.seq - 1,
        after_ply,
        seq,
        fen,
        ply,
        clocks,
        white_ms,
        black_ms,
        ended,
        draw_offer,
        events[-1].at_ms,
    )


def initial_state(created: GameCreated) -> BoardState:
    """Return the state of a game that has just been created."""
    return BoardState(
        game_id=created.game_id,
        fen=chess.STARTING_FEN,
        ply=0,
        seq=created.seq,
        status="started",
        winner=None,
        reason=None,
        white_ms=created.initial_ms,
        black_ms=created.initial_ms,
        increment_ms=created.increment_ms,
        draw_offer=None,
        updated_at_ms=created.at_ms,
    )


def advance(state: BoardState, event: GameEvent) -> BoardState:
    """Return the state after ``event``; the event is assumed valid."""
    if isinstance(event, MovePlayed):
        return replace(
            state,
            fen=event.fen,
            ply=event.ply,
            seq=event.seq,
            white_ms=event.white_ms,
            black_ms=event.black_ms,
            draw_offer=None,
            updated_at_ms=event.at_ms,
        )
    if isinstance(event, DrawOffered):
        return replace(
            state, seq=event.seq, draw_offer=event.by, updated_at_ms=event.at_ms
        )
    if isinstance(event, DrawDeclined):
        return replace(state, seq=event.seq, draw_offer=None, updated_at_ms=event.at_ms)
    if isinstance(event, GameEnded):
        return replace(
            state,
            seq=event.seq,
            status=event.status,
            winner=event.winner,
            reason=event.reason,
            white_ms=event.white_ms,
            black_ms=event.black_ms,
            draw_offer=None,
            updated_at_ms=event.at_ms,
        )
    raise Conflict(
        "a game_created event cannot be appended",
        game_id=state.game_id,
        seq=event.seq,
    )


def check_append(
    owned: OwnedBoard, epoch: int, events: Sequence[GameEvent]
) -> OwnedBoard:
    """
    Return the state after appending ``events`` with owner ``epoch``.

    Raises:
        Fenced: ``epoch`` is older than the game's owner epoch.
        GameOver: the game has ended; nothing may follow its end.
        Conflict: an event's seq is not the next one, or a move's ply is not.
    """
    state = owned.state
    if epoch < owned.epoch:
        raise Fenced(
            "a newer owner holds the game",
            game_id=state.game_id,
            epoch=epoch,
            owner_epoch=owned.epoch,
        )

    for event in events:
        state = _check_event(state, event)

    return OwnedBoard(state, max(epoch, owned.epoch))


def _check_event(state: BoardState, event: GameEvent) -> BoardState:
    if state.status != "started":
        raise GameOver("the game has ended", game_id=state.game_id, seq=event.seq)
    if event.seq != state.seq + 1:
        raise Conflict(
            f"seq {event.seq} is taken or leaves a gap after {state.seq}",
            game_id=state.game_id,
            seq=event.seq,
            last_seq=state.seq,
        )
    if isinstance(event, MovePlayed) and event.ply != state.ply + 1:
        raise Conflict(
            f"ply {event.ply} is taken or leaves a gap after {state.ply}",
            game_id=state.game_id,
            ply=event.ply,
            move=event.uci,
        )

    return advance(state, event)
