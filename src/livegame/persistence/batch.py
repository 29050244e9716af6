"""
One group-commit transaction: many games' creates and appends at once.

The fast path is set-based. It inserts the new games, locks the rows of the
games being appended to (in id order, so concurrent batches cannot
deadlock), checks every append in Python against the locked state, and
writes all accepted moves, outbox rows and game updates with one ``unnest``
statement per table. A refused append (fenced, seq or ply taken, game over)
is left out and reported; the others commit.

Should the database still refuse the batch (a constraint the checks did not
foresee), the batch is retried with one savepoint per request, so one bad
request fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import chess

from livegame.actors.game.events import (
    Color,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
    Status,
    event_id,
)
from livegame.errors import Conflict, GameNotFound, LiveGameError, StorageError
from livegame.persistence.codec import (
    encode_json,
    outbox_payload,
    state_from_row,
    to_datetime,
)
from livegame.persistence.requests import AppendEvents, CreateGame, WriteRequest
from livegame.persistence.state import (
    BoardState,
    OwnedBoard,
    check_append,
    initial_state,
)

_INSERT_GAMES = """
INSERT INTO games (id, white, black, fen, ply, created_seq, last_seq,
                   initial_ms, increment_ms, white_ms, black_ms, created_at,
                   updated_at)
SELECT u.id, u.white, u.black, $8, 0, u.seq, u.seq,
       u.initial_ms, u.increment_ms, u.initial_ms, u.initial_ms, u.created_at,
       u.created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
            $6::int[], $7::timestamptz[])
     AS u(id, white, black, seq, initial_ms, increment_ms, created_at)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

_LOCK_GAMES = """
SELECT id, fen, ply, last_seq, status, winner, reason, white_ms, black_ms,
       increment_ms, draw_offer, epoch, updated_at
FROM games WHERE id = ANY($1::text[])
ORDER BY id
FOR UPDATE
"""

_INSERT_MOVES = """
INSERT INTO game_moves (game_id, ply, seq, uci, san, fen, white_ms, black_ms,
                        played_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[],
                     $6::text[], $7::int[], $8::int[], $9::timestamptz[])
"""

# Rows get their ids in the order given, so a game's rows are in seq order.
_INSERT_OUTBOX = """
INSERT INTO outbox (event_id, game_id, seq, type, payload, trace_context)
SELECT u.event_id, u.game_id, u.seq, u.type, u.payload::jsonb, u.trace_context
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
            $6::text[])
     WITH ORDINALITY AS u(event_id, game_id, seq, type, payload, trace_context, n)
ORDER BY u.n
"""

_UPDATE_GAMES = """
UPDATE games AS g
SET fen = u.fen, ply = u.ply, last_seq = u.last_seq, status = u.status,
    winner = u.winner, reason = u.reason, white_ms = u.white_ms,
    black_ms = u.black_ms, draw_offer = u.draw_offer, epoch = u.epoch,
    ended_seq = coalesce(g.ended_seq, u.ended_seq),
    ended_ply = coalesce(g.ended_ply, u.ended_ply),
    ended_at = coalesce(g.ended_at, u.ended_at),
    updated_at = u.updated_at
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[],
            $6::text[], $7::text[], $8::int[], $9::int[], $10::text[],
            $11::bigint[], $12::int[], $13::int[], $14::timestamptz[],
            $15::timestamptz[])
     AS u(id, fen, ply, last_seq, status, winner, reason, white_ms, black_ms,
          draw_offer, epoch, ended_seq, ended_ply, ended_at, updated_at)
WHERE g.id = u.id
"""

# Constraint and data errors refuse a statement but leave the connection fine.
_STATEMENT_ERRORS = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
)


@dataclass(slots=True)
class BatchResult:
    """The outcome of each request, in order, and what the batch changed."""

    errors: list[LiveGameError | None]
    states: dict[str, BoardState] = field(default_factory=dict)
    outbox_rows: int = 0


@dataclass(slots=True)
class _Plan:
    """The rows that the accepted requests of a batch write."""

    moves: list[tuple[object, ...]] = field(default_factory=list)
    outbox: list[tuple[object, ...]] = field(default_factory=list)
    # States of the games created by the batch, as inserted.
    created: dict[str, BoardState] = field(default_factory=dict)
    # States of the games appended to, after their last accepted append.
    appended: dict[str, OwnedBoard] = field(default_factory=dict)
    ended: dict[str, GameEnded] = field(default_factory=dict)

    def states(self) -> dict[str, BoardState]:
        states = dict(self.created)
        states.update((gid, owned.state) for gid, owned in self.appended.items())
        return states


async def write_batch(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    notify_channel: str | None = None,
) -> BatchResult:
    """
    Commit ``requests`` in one transaction on ``conn``.

    Refused requests do not raise: their error is in the result, in the
    position of the request.

    Raises:
        asyncpg and OS errors when the transaction as a whole fails; the
        caller translates them.
    """
    try:
        async with conn.transaction():
            result = await _apply(conn, requests)
            await _notify(conn, notify_channel, result)
    except _STATEMENT_ERRORS:
        if len(requests) == 1:
            raise
        return await _write_one_by_one(conn, requests, notify_channel)

    return result


async def _write_one_by_one(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    notify_channel: str | None,
) -> BatchResult:
    merged = BatchResult(errors=[])
    async with conn.transaction():
        for request in requests:
            merged.errors.append(await _apply_in_savepoint(conn, request, merged))

        await _notify(conn, notify_channel, merged)

    return merged


async def _apply_in_savepoint(
    conn: asyncpg.Connection, request: WriteRequest, merged: BatchResult
) -> LiveGameError | None:
    try:
        async with conn.transaction():
            result = await _apply(conn, [request])
    except _STATEMENT_ERRORS as exc:
        error = StorageError(
            f"the database refused the write: {exc}", game_id=request.game_id
        )
        error.__cause__ = exc
        return error

    merged.states.update(result.states)
    merged.outbox_rows += result.outbox_rows

    return result.errors[0]


async def _notify(
    conn: asyncpg.Connection, channel: str | None, result: BatchResult
) -> None:
    # Delivered at commit, so a relay on any node wakes for these rows.
    if channel and result.outbox_rows:
        await conn.execute("SELECT pg_notify($1, '')", channel)


async def _apply(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest]
) -> BatchResult:
    errors: list[LiveGameError | None] = [None] * len(requests)
    plan = _Plan()

    await _create_games(conn, requests, errors, plan)
    await _append_events(conn, requests, errors, plan)
    await _write_plan(conn, plan)

    return BatchResult(errors, plan.states(), len(plan.outbox))


async def _create_games(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    errors: list[LiveGameError | None],
    plan: _Plan,
) -> None:
    creates: dict[str, tuple[int, GameCreated]] = {}
    for index, request in enumerate(requests):
        if not isinstance(request, CreateGame):
            continue
        if request.game_id in creates:
            errors[index] = Conflict("game exists", game_id=request.game_id)
        else:
            creates[request.game_id] = (index, request.event)

    if not creates:
        return

    events = [event for _, event in creates.values()]
    rows = await conn.fetch(
        _INSERT_GAMES,
        [e.game_id for e in events],
        [e.white for e in events],
        [e.black for e in events],
        [e.seq for e in events],
        [e.initial_ms for e in events],
        [e.increment_ms for e in events],
        [to_datetime(e.at_ms) for e in events],
        chess.STARTING_FEN,
    )
    inserted = {row["id"] for row in rows}

    for index, event in creates.values():
        if event.game_id not in inserted:
            errors[index] = Conflict("game exists", game_id=event.game_id)
            continue

        state = initial_state(event)
        plan.created[event.game_id] = state
        plan.outbox.append(_outbox_row(event, state.status, state.winner))


async def _append_events(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    errors: list[LiveGameError | None],
    plan: _Plan,
) -> None:
    appends = [
        (index, request)
        for index, request in enumerate(requests)
        if isinstance(request, AppendEvents)
    ]
    if not appends:
        return

    game_ids = sorted({request.game_id for _, request in appends})
    rows = await conn.fetch(_LOCK_GAMES, game_ids)
    locked = {row["id"]: _owned_state(row) for row in rows}

    for index, request in appends:
        errors[index] = _plan_append(request, locked, plan)


def _plan_append(
    request: AppendEvents, locked: dict[str, OwnedBoard], plan: _Plan
) -> LiveGameError | None:
    owned = locked.get(request.game_id)
    if owned is None:
        return GameNotFound("unknown game", game_id=request.game_id)

    try:
        after = check_append(owned, request.epoch, request.events)
    except LiveGameError as refused:
        return refused

    # Later appends of the same game in this batch see this one.
    locked[request.game_id] = after
    plan.appended[request.game_id] = after
    _plan_rows(owned.state, request, plan)

    return None


def _plan_rows(state: BoardState, request: AppendEvents, plan: _Plan) -> None:
    # Only an ending changes status and winner, which each outbox row carries.
    status, winner = state.status, state.winner
    for event in request.events:
        if isinstance(event, MovePlayed):
            plan.moves.append(_move_row(event))
        elif isinstance(event, GameEnded):
            plan.ended[event.game_id] = event
            status, winner = event.status, event.winner
        plan.outbox.append(_outbox_row(event, status, winner, request.trace_context))


def _owned_state(row: asyncpg.Record) -> OwnedBoard:
    return OwnedBoard(state_from_row(row), row["epoch"])


def _move_row(event: MovePlayed) -> tuple[object, ...]:
    return (
        event.game_id,
        event.ply,
        event.seq,
        event.uci,
        event.san,
        event.fen,
        event.white_ms,
        event.black_ms,
        to_datetime(event.at_ms),
    )


def _outbox_row(
    event: GameEvent,
    status: Status,
    winner: Color | None,
    trace_context: str | None = None,
) -> tuple[object, ...]:
    payload = encode_json(outbox_payload(event, status, winner))
    return (
        event_id(event),
        event.game_id,
        event.seq,
        event.type,
        payload,
        trace_context,
    )


async def _write_plan(conn: asyncpg.Connection, plan: _Plan) -> None:
    if plan.moves:
        await conn.execute(_INSERT_MOVES, *_columns(plan.moves))
    if plan.outbox:
        await conn.execute(_INSERT_OUTBOX, *_columns(plan.outbox))
    if plan.appended:
        rows = [
            _game_row(owned, plan.ended.get(game_id))
            for game_id, owned in plan.appended.items()
        ]
        await conn.execute(_UPDATE_GAMES, *_columns(rows))


def _game_row(owned: OwnedBoard, ended: GameEnded | None) -> tuple[object, ...]:
    state = owned.state
    return (
        state.game_id,
        state.fen,
        state.ply,
        state.seq,
        state.status,
        state.winner,
        state.reason,
        state.white_ms,
        state.black_ms,
        state.draw_offer,
        owned.epoch,
        ended.seq if ended else None,
        ended.ply if ended else None,
        to_datetime(ended.at_ms) if ended else None,
        to_datetime(state.updated_at_ms),
    )


def _columns(rows: list[tuple[object, ...]]) -> list[list[object]]:
    """Turn rows into the column arrays that ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]
