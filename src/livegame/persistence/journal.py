"""
The PostgreSQL journal: the game actor's durable log.

Writes (create, append) go to the writer, which commits them in groups;
reads (load, board) and claims go straight to the pool. The semantics are
those of :class:`livegame.actors.game.journal.InMemoryJournal`, a little
stricter: a move's ply must follow the game's ply, and nothing may be
appended after the game has ended (:class:`~livegame.errors.GameOver`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from livegame.actors.game.events import GameCreated, GameEnded, GameEvent, MovePlayed
from livegame.actors.game.journal import GameHistory
from livegame.actors.game.messages import GameSummary
from livegame.errors import Fenced, GameNotFound, StorageError
from livegame.persistence._translate import postgres_errors
from livegame.persistence.codec import state_from_row, summary_from_row, to_ms
from livegame.persistence.requests import (
    AppendEvents,
    CreateGame,
    PendingWrite,
    WriteRequest,
    WriteSink,
)
from livegame.persistence.state import BoardState
from livegame.telemetry import metrics
from livegame.telemetry.tracing import current_traceparent

# Every column of a games row, as _history and state_from_row read them.
_GAME_COLUMNS = """
       id, white, black, status, winner, reason, fen, ply, created_seq, last_seq,
       initial_ms, increment_ms, white_ms, black_ms, draw_offer, epoch,
       ended_seq, ended_ply, ended_at, created_at, updated_at"""

_GAME = f"SELECT {_GAME_COLUMNS}\nFROM games WHERE id = $1"

# A player's games, newest first, from the row after ``before`` on: each
# colour's half reads its own index in order and stops at the limit.
_LIST_HALF = """
    (SELECT id, white, black, status, winner, reason, fen, ply, white_ms,
            black_ms, initial_ms, increment_ms, created_at, updated_at
     FROM games
     WHERE {colour} = $1 AND status = ANY($2::text[])
       AND ($3::text IS NULL OR (created_at, id) < (SELECT * FROM anchor))
     ORDER BY created_at DESC, id DESC LIMIT $4)
"""
_LIST = f"""
WITH anchor AS (SELECT created_at, id FROM games WHERE id = $3)
SELECT * FROM ({_LIST_HALF.format(colour="white")}
               UNION ALL
               {_LIST_HALF.format(colour="black")}) AS mine
ORDER BY created_at DESC, id DESC LIMIT $4
"""

# The row and its moves in one statement: one round trip, one snapshot. The
# moves come as an array of anonymous records, which asyncpg decodes into
# tuples of typed values.
_LOAD = f"""
SELECT {_GAME_COLUMNS},
       ARRAY(
           SELECT ROW(ply, seq, uci, san, fen, white_ms, black_ms, played_at)
           FROM game_moves m WHERE m.game_id = g.id ORDER BY ply
       ) AS moves
FROM games g WHERE id = $1
"""

_CLAIM = "UPDATE games SET epoch = $2 WHERE id = $1 AND epoch <= $2 RETURNING id"


class PostgresJournal:
    """
    A :class:`~livegame.actors.game.journal.Journal` on PostgreSQL.

    Args:
        pool: the shared asyncpg pool, for reads and claims.
        writer: where writes go: a started
            :class:`~livegame.persistence.committer.GroupCommitter`, or
            :class:`~livegame.persistence.writer.WriterSink` for the writer
            actor.
        reply_timeout: seconds to wait for the writer's verdict before
            raising StorageError; the write may still commit afterwards.
    """

    def __init__(
        self, pool: asyncpg.Pool, writer: WriteSink, *, reply_timeout: float = 30.0
    ) -> None:
        self._pool = pool
        self._writer = writer
        self._reply_timeout = reply_timeout

    def __repr__(self) -> str:
        return f"<PostgresJournal writer={self._writer!r}>"

    async def create(self, event: GameCreated) -> None:
        await self._write(CreateGame(event))

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        for event in events:
            if event.game_id != game_id:
                raise ValueError(f"event of game {event.game_id} appended to {game_id}")
        # Inside a traced move the current span is the append's: the relay
        # publishes these events as its children.
        request = AppendEvents(game_id, epoch, tuple(events), current_traceparent())
        await self._write(request)

    async def load(self, game_id: str) -> GameHistory | None:
        timer = metrics.db_query("load_game").time()
        with timer, postgres_errors("load", game_id=game_id):
            game = await self._pool.fetchrow(_LOAD, game_id)

        if game is None:
            return None
        return _history(game, game["moves"])

    async def list_games(
        self,
        player: str,
        statuses: Collection[str],
        limit: int,
        before: str | None = None,
    ) -> list[GameSummary]:
        """
        Return up to ``limit`` games of ``player``, newest first.

        Only games whose status is one of ``statuses``; with ``before``, only
        games created before that game (none if it is unknown).
        """
        timer = metrics.db_query("list_games").time()
        with timer, postgres_errors("list", player=player):
            rows = await self._pool.fetch(_LIST, player, list(statuses), before, limit)

        return [summary_from_row(row) for row in rows]

    async def board(self, game_id: str) -> BoardState | None:
        """Return the game's latest state from its row, or None if unknown."""
        timer = metrics.db_query("read_board").time()
        with timer, postgres_errors("board", game_id=game_id):
            game = await self._pool.fetchrow(_GAME, game_id)

        return None if game is None else state_from_row(game)

    async def claim(self, game_id: str, epoch: int) -> None:
        """
        Make ``epoch`` the game's owner epoch, fencing every older owner.

        Call it after winning the directory claim and before serving moves.

        Raises:
            GameNotFound: no such game.
            Fenced: the game's epoch is newer than ``epoch``; the context's
                ``owner_epoch`` says which, so a caller can claim above it.
        """
        timer = metrics.db_query("claim_game").time()
        with timer, postgres_errors("claim", game_id=game_id, epoch=epoch):
            claimed = await self._pool.fetchval(_CLAIM, game_id, epoch)
            if claimed is not None:
                return
            current = await self._pool.fetchval(
                "SELECT epoch FROM games WHERE id = $1", game_id
            )

        if current is None:
            raise GameNotFound("unknown game", game_id=game_id)
        raise Fenced(
            "a newer owner holds the game",
            game_id=game_id,
            epoch=epoch,
            owner_epoch=current,
        )

    async def _write(self, request: WriteRequest) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)
        self._writer.send(PendingWrite(request, done))

        # The caller waits on a future of its own: giving up (a timeout, a
        # cancelled caller) must never cancel the write, which may already
        # be in a committing batch. One timer, no task: this is per move.
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(_retrieve)
        done.add_done_callback(lambda _: _pass_on(done, waiter))
        timer = loop.call_later(self._reply_timeout, _time_out, waiter, request)
        try:
            await waiter
        finally:
            timer.cancel()


def _pass_on(done: asyncio.Future[None], waiter: asyncio.Future[None]) -> None:
    if waiter.done():
        return
    if done.cancelled():
        waiter.set_exception(StorageError("the write was abandoned"))
    elif (error := done.exception()) is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(None)


def _time_out(waiter: asyncio.Future[None], request: WriteRequest) -> None:
    if not waiter.done():
        waiter.set_exception(
            StorageError("the writer did not answer in time", game_id=request.game_id)
        )


def _retrieve(done: asyncio.Future[None]) -> None:
    # A caller that timed out no longer awaits: mark the outcome as seen.
    if not done.cancelled():
        done.exception()


def _history(game: asyncpg.Record, moves: list[tuple[Any, ...]]) -> GameHistory:
    game_id = game["id"]
    created = GameCreated(
        game_id=game_id,
        seq=game["created_seq"],
        white=game["white"],
        black=game["black"],
        initial_ms=game["initial_ms"],
        increment_ms=game["increment_ms"],
        at_ms=to_ms(game["created_at"]),
    )
    played = tuple(_move(game_id, row) for row in moves)

    return GameHistory(
        created=created,
        moves=played,
        ended=_ended(game),
        draw_offer=game["draw_offer"],
        last_seq=game["last_seq"],
    )


def _move(game_id: str, row: tuple[Any, ...]) -> MovePlayed:
    ply, seq, uci, san, fen, white_ms, black_ms, played_at = row
    return MovePlayed(
        game_id=game_id,
        seq=seq,
        ply=ply,
        uci=uci,
        san=san,
        fen=fen,
        white_ms=white_ms,
        black_ms=black_ms,
        at_ms=to_ms(played_at),
    )


def _ended(game: asyncpg.Record) -> GameEnded | None:
    if game["ended_seq"] is None:
        return None
    return GameEnded(
        game_id=game["id"],
        seq=game["ended_seq"],
        ply=game["ended_ply"],
        status=game["status"],
        winner=game["winner"],
        reason=game["reason"],
        white_ms=game["white_ms"],
        black_ms=game["black_ms"],
        at_ms=to_ms(game["ended_at"]),
    )
