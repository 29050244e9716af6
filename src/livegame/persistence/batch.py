"""
One group-commit transaction: many games' creates and appends at once.

A batch is one statement, so one round trip, and outside a transaction block
PostgreSQL commits it on its own. The statement inserts the new games and
applies each append's row change (:func:`~livegame.persistence.state.row_change`)
to its game's row only where the row is where the append starts and no newer
owner holds it: the update checks fencing, seq and ply under the row lock it
takes, so the verdict holds until commit. Then it writes the moves and outbox
rows of the games it created or changed. A request it left out is refused,
and a read afterwards says why (fenced, seq or ply taken, game over, unknown
game); the others commit.

The rows travel as four JSON documents: one encoding each, where arrays cost
a type check and an encoding per value.

Should the database refuse the statement (a constraint the checks did not
foresee), the batch is retried in one transaction with one savepoint per
request, so one bad request fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import asyncpg
import chess
import orjson

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
from livegame.persistence.codec import outbox_payload, state_from_row
from livegame.persistence.requests import AppendEvents, CreateGame, WriteRequest
from livegame.persistence.state import (
    BoardState,
    OwnedBoard,
    RowChange,
    check_append,
    initial_state,
    row_change,
)

# Times travel as milliseconds since the Unix epoch; to_timestamp keeps them
# exact (a double holds microseconds since 1970 exactly for millennia).
_WRITE = """
WITH created AS (
    INSERT INTO games (id, white, black, fen, ply, created_seq, last_seq,
                       initial_ms, increment_ms, white_ms, black_ms,
                       created_at, updated_at)
    SELECT c->>0, c->>1, c->>2, $5, 0, (c->>3)::int, (c->>3)::int,
           (c->>4)::int, (c->>5)::int, (c->>4)::int, (c->>4)::int,
           to_timestamp((c->>6)::float8 / 1000),
           to_timestamp((c->>6)::float8 / 1000)
    FROM jsonb_array_elements($1::jsonb) AS c
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), changed AS (
    UPDATE games AS g
    SET fen = coalesce(u.fen, g.fen),
        ply = coalesce(u.ply, g.ply),
        last_seq = u.seq,
        status = coalesce(u.status, g.status),
        winner = CASE WHEN u.status IS NULL THEN g.winner ELSE u.winner END,
        reason = CASE WHEN u.status IS NULL THEN g.reason ELSE u.reason END,
        white_ms = CASE WHEN u.clocks THEN u.white_ms ELSE g.white_ms END,
        black_ms = CASE WHEN u.clocks THEN u.black_ms ELSE g.black_ms END,
        draw_offer = u.draw_offer,
        epoch = greatest(g.epoch, u.epoch),
        ended_seq = coalesce(g.ended_seq, u.ended_seq),
        ended_ply = coalesce(g.ended_ply, u.ended_ply),
        ended_at = coalesce(g.ended_at, to_timestamp(u.ended_at_ms / 1000)),
        updated_at = to_timestamp(u.updated_at_ms / 1000)
    FROM (
        SELECT r->>0 AS id, (r->>1)::bigint AS epoch, (r->>2)::int AS after_seq,
               (r->>3)::int AS after_ply, (r->>4)::int AS seq, r->>5 AS fen,
               (r->>6)::int AS ply, (r->>7)::boolean AS clocks,
               (r->>8)::int AS white_ms, (r->>9)::int AS black_ms,
               r->>10 AS status, r->>11 AS winner, r->>12 AS reason,
               r->>13 AS draw_offer, (r->>14)::int AS ended_seq,
               (r->>15)::int AS ended_ply, (r->>16)::float8 AS ended_at_ms,
               (r->>17)::float8 AS updated_at_ms
        FROM jsonb_array_elements($2::jsonb) AS r
    ) AS u
    WHERE g.id = u.id
      AND g.epoch <= u.epoch
      AND g.last_seq = u.after_seq
      AND g.status = 'started'
      AND (u.after_ply IS NULL OR g.ply = u.after_ply)
    RETURNING g.id, g.fen, g.ply, g.last_seq, g.status, g.winner, g.reason,
              g.white_ms, g.black_ms, g.increment_ms, g.draw_offer
), moved AS (
    INSERT INTO game_moves (game_id, ply, seq, uci, san, fen, white_ms,
                            black_ms, played_at)
    SELECT m->>0, (m->>1)::int, (m->>2)::int, m->>3, m->>4, m->>5,
           (m->>6)::int, (m->>7)::int, to_timestamp((m->>8)::float8 / 1000)
    FROM jsonb_array_elements($3::jsonb) AS m
    WHERE m->>0 IN (SELECT id FROM changed)
), queued AS (
    -- Rows get their ids in the order given, so a game's rows are in seq
    -- order.
    INSERT INTO outbox (event_id, game_id, seq, type, payload, trace_context)
    SELECT o->>0, o->>1, (o->>2)::int, o->>3, o->4, o->>5
    FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS e(o, n)
    WHERE o->>1 IN (SELECT id FROM changed UNION ALL SELECT id FROM created)
    ORDER BY e.n
)
SELECT * FROM changed
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM created
"""

_READ_GAMES = """
SELECT id, fen, ply, last_seq, status, winner, reason, white_ms, black_ms,
       increment_ms, draw_offer, epoch, updated_at
FROM games WHERE id = ANY($1::text[])
"""

# These refuse a statement but leave the connection fine: constraint and
# data errors, and a value JSON cannot carry (checked before sending).
_STATEMENT_ERRORS = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    orjson.JSONEncodeError,
)


@dataclass(slots=True)
class BatchResult:
    """The outcome of each request, in order, and what the batch changed."""

    errors: list[LiveGameError | None]
    states: dict[str, BoardState] = field(default_factory=dict)
    outbox_rows: int = 0


@dataclass(slots=True)
class _Plan:
    """The rows a batch's statement writes, as JSON rows, and whose they are."""

    creates: list[list[object]] = field(default_factory=list)
    changes: list[list[object]] = field(default_factory=list)
    moves: list[list[object]] = field(default_factory=list)
    outbox: list[list[object]] = field(default_factory=list)
    # The request of each game in the statement, by position in the batch.
    created: dict[str, tuple[int, GameCreated]] = field(default_factory=dict)
    appended: dict[str, tuple[int, AppendEvents, RowChange]] = field(
        default_factory=dict
    )
    # Appends to read and judge after the statement: those it left out, and
    # those that could not apply whatever the row holds.
    to_judge: list[int] = field(default_factory=list)


async def write_batch(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest]
) -> BatchResult:
    """
    Commit ``requests`` on ``conn``, which must not be in a transaction.

    Requests of distinct games commit in one statement and transaction; a
    game's later requests, in that order, in one more each.

    Refused requests do not raise: their error is in the result, in the
    position of the request.

    Raises:
        asyncpg and OS errors when the transaction as a whole fails; the
        caller translates them.
    """
    rounds = _rounds(requests)
    try:
        if len(rounds) == 1:
            return await _apply(conn, requests)
        async with conn.transaction():
            return await _apply_rounds(conn, requests, rounds)
    except _STATEMENT_ERRORS as exc:
        if len(requests) == 1:
            return BatchResult(errors=[_refused_by_database(requests[0], exc)])
        return await _write_one_by_one(conn, requests)


def _rounds(requests: Sequence[WriteRequest]) -> list[list[int]]:
    """Split the positions of ``requests`` so each part has a game once."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, request in enumerate(requests):
        round_ = seen.get(request.game_id, 0)
        seen[request.game_id] = round_ + 1
        if round_ == len(rounds):
            rounds.append([])
        rounds[round_].append(index)

    return rounds


async def _apply_rounds(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    rounds: list[list[int]],
) -> BatchResult:
    merged = BatchResult(errors=[None] * len(requests))
    for positions in rounds:
        result = await _apply(conn, [requests[index] for index in positions])
        for index, error in zip(positions, result.errors, strict=True):
            merged.errors[index] = error
        merged.states.update(result.states)
        merged.outbox_rows += result.outbox_rows

    return merged


async def _write_one_by_one(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest]
) -> BatchResult:
    merged = BatchResult(errors=[])
    async with conn.transaction():
        for request in requests:
            merged.errors.append(await _apply_in_savepoint(conn, request, merged))

    return merged


async def _apply_in_savepoint(
    conn: asyncpg.Connection, request: WriteRequest, merged: BatchResult
) -> LiveGameError | None:
    try:
        async with conn.transaction():
            result = await _apply(conn, [request])
    except _STATEMENT_ERRORS as exc:
        return _refused_by_database(request, exc)

    merged.states.update(result.states)
    merged.outbox_rows += result.outbox_rows

    return result.errors[0]


def _refused_by_database(request: WriteRequest, exc: Exception) -> StorageError:
    error = StorageError(
        f"the database refused the write: {exc}", game_id=request.game_id
    )
    error.__cause__ = exc
    return error


async def _apply(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest]
) -> BatchResult:
    """Write ``requests``, each of a different game, in one statement."""
    result = BatchResult(errors=[None] * len(requests))
    plan = _plan(requests)
    if plan.creates or plan.changes:
        rows = await conn.fetch(
            _WRITE,
            _json(plan.creates),
            _json(plan.changes),
            _json(plan.moves),
            _json(plan.outbox),
            chess.STARTING_FEN,
        )
        _take_rows(rows, plan, result)

    for index, _ in plan.created.values():
        result.errors[index] = Conflict("game exists", game_id=requests[index].game_id)
    plan.to_judge.extend(index for index, _, _ in plan.appended.values())
    if plan.to_judge:
        await _judge(conn, requests, plan.to_judge, result)

    return result


def _plan(requests: Sequence[WriteRequest]) -> _Plan:
    plan = _Plan()
    for index, request in enumerate(requests):
        if isinstance(request, CreateGame):
            _plan_create(index, request.event, plan)
            continue
        try:
            change = row_change(request.events)
        except LiveGameError:
            plan.to_judge.append(index)
        else:
            _plan_append(index, request, change, plan)

    # The update locks the rows in this order, the same in every batch, so two
    # batches that share games (two owners, one of them fenced) cannot
    # deadlock.
    plan.changes.sort(key=itemgetter(0))

    return plan


def _plan_create(index: int, event: GameCreated, plan: _Plan) -> None:
    plan.created[event.game_id] = (index, event)
    plan.creates.append(
        [
            event.game_id,
            event.white,
            event.black,
            event.seq,
            event.initial_ms,
            event.increment_ms,
            event.at_ms,
        ]
    )
    plan.outbox.append(_outbox_row(event, "started", None, None))


def _plan_append(
    index: int, request: AppendEvents, change: RowChange, plan: _Plan
) -> None:
    ended = change.ended
    plan.appended[request.game_id] = (index, request, change)
    plan.changes.append(
        [
            request.game_id,
            request.epoch,
            change.after_seq,
            change.after_ply,
            change.seq,
            change.fen,
            change.ply,
            change.clocks,
            change.white_ms,
            change.black_ms,
            ended.status if ended else None,
            ended.winner if ended else None,
            ended.reason if ended else None,
            change.draw_offer,
            ended.seq if ended else None,
            ended.ply if ended else None,
            ended.at_ms if ended else None,
            change.updated_at_ms,
        ]
    )

    # The change applies only to a started game, and only an ending changes
    # status and winner, which each outbox row carries.
    status: Status = "started"
    winner: Color | None = None
    trace_context = request.trace_context
    for event in request.events:
        if isinstance(event, MovePlayed):
            plan.moves.append(_move_row(event))
        elif isinstance(event, GameEnded):
            status, winner = event.status, event.winner
        plan.outbox.append(_outbox_row(event, status, winner, trace_context))


def _move_row(event: MovePlayed) -> list[object]:
    return [
        event.game_id,
        event.ply,
        event.seq,
        event.uci,
        event.san,
        event.fen,
        event.white_ms,
        event.black_ms,
        event.at_ms,
    ]


def _outbox_row(
    event: GameEvent,
    status: Status,
    winner: Color | None,
    trace_context: str | None,
) -> list[object]:
    return [
        event_id(event),
        event.game_id,
        event.seq,
        event.type,
        outbox_payload(event, status, winner),
        trace_context,
    ]


def _json(rows: list[list[object]]) -> str:
    return orjson.dumps(rows).decode()


def _take_rows(rows: list[asyncpg.Record], plan: _Plan, result: BatchResult) -> None:
    """Record the requests the statement wrote; leave the others in ``plan``."""
    for row in rows:
        game_id = row["id"]
        if row["fen"] is None:
            _, created = plan.created.pop(game_id)
            result.states[game_id] = initial_state(created)
            result.outbox_rows += 1
            continue

        _, request, change = plan.appended.pop(game_id)
        result.states[game_id] = BoardState(
            game_id=game_id,
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
            updated_at_ms=change.updated_at_ms,
        )
        result.outbox_rows += len(request.events)


async def _judge(
    conn: asyncpg.Connection,
    requests: Sequence[WriteRequest],
    positions: list[int],
    result: BatchResult,
) -> None:
    """Say why each append at ``positions`` was refused, from its game's row."""
    game_ids = [requests[index].game_id for index in positions]
    rows = await conn.fetch(_READ_GAMES, game_ids)
    games = {row["id"]: OwnedBoard(state_from_row(row), row["epoch"]) for row in rows}
    for index in positions:
        request = requests[index]
        assert isinstance(request, AppendEvents)
        result.errors[index] = _verdict(request, games.get(request.game_id))


def _verdict(request: AppendEvents, owned: OwnedBoard | None) -> LiveGameError | None:
    if owned is None:
        return GameNotFound("unknown game", game_id=request.game_id)
    try:
        check_append(owned, request.epoch, request.events)
    except LiveGameError as refused:
        return refused

    # An append of no events changes nothing: it passes where it is not
    # fenced. Any other append the statement left out met a row that has
    # changed since, under another owner.
    if not request.events:
        return None
    return Conflict(
        "the game changed while the append was committed",
        game_id=request.game_id,
        seq=request.events[0].seq,
    )
