"""Group commit: many games per transaction, each write judged on its own."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest
from persistence_helpers import GameScript

from livegame.app.embedded import free_port
from livegame.errors import Conflict, Fenced, Overloaded, StorageError
from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.requests import (
    AppendEvents,
    CommittedBatch,
    CreateGame,
    PendingWrite,
    WriteRequest,
)

pytestmark = pytest.mark.anyio

GAMES = 40


class Recorder:
    """A commit listener that keeps what it is told."""

    def __init__(self) -> None:
        self.batches: list[CommittedBatch] = []

    def committed(self, batch: CommittedBatch) -> None:
        self.batches.append(batch)


async def created_games(committer: GroupCommitter, count: int) -> list[GameScript]:
    games = [GameScript() for _ in range(count)]
    await asyncio.gather(*(committer.write(CreateGame(g.created())) for g in games))
    return games


async def transactions_of(pool: asyncpg.Pool, games: list[GameScript]) -> set[int]:
    """Return the ids of the transactions that wrote these games' moves."""
    rows = await pool.fetch(
        "SELECT DISTINCT xmin::text::bigint AS xid FROM game_moves"
        " WHERE game_id = ANY($1::text[])",
        [g.game_id for g in games],
    )
    return {row["xid"] for row in rows}


@pytest.fixture
def commit_config() -> GroupCommitConfig:
    # A long window: a batch leaves only when max_batch writes wait.
    return GroupCommitConfig(max_batch=GAMES, window=30.0)


async def test_appends_of_many_games_commit_in_one_transaction(
    committer: GroupCommitter, pool: asyncpg.Pool
) -> None:
    games = await created_games(committer, GAMES)
    batches_before = committer.statistics().batches

    await asyncio.gather(
        *(committer.write(AppendEvents(g.game_id, 1, (g.move("e2e4"),))) for g in games)
    )

    stats = committer.statistics()
    assert stats.batches == batches_before + 1
    assert stats.last_batch_size == GAMES
    assert len(await transactions_of(pool, games)) == 1


async def test_a_fenced_append_fails_alone_and_the_others_commit(
    committer: GroupCommitter, pool: asyncpg.Pool
) -> None:
    games = await created_games(committer, GAMES)
    journal = PostgresJournal(pool, committer)
    await journal.claim(games[0].game_id, 7)

    results = await asyncio.gather(
        *(
            committer.write(AppendEvents(g.game_id, 1, (g.move("e2e4"),)))
            for g in games
        ),
        return_exceptions=True,
    )

    assert isinstance(results[0], Fenced)
    assert results[1:] == [None] * (GAMES - 1)
    assert len(await transactions_of(pool, games[1:])) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM game_moves WHERE game_id = $1", games[0].game_id
        )
        == 0
    )


async def test_a_conflict_and_a_duplicate_create_fail_alone(
    committer: GroupCommitter, pool: asyncpg.Pool
) -> None:
    games = (await created_games(committer, GAMES))[: GAMES - 2]
    stale = games[0]
    stale.seq = 5  # the game's last seq is 1: this leaves a gap
    newcomer = GameScript()
    requests = [AppendEvents(g.game_id, 1, (g.move("d2d4"),)) for g in games]
    requests += [CreateGame(newcomer.created()), CreateGame(games[1].created())]

    results = await asyncio.gather(
        *(committer.write(r) for r in requests), return_exceptions=True
    )

    assert isinstance(results[0], Conflict)
    assert isinstance(results[-1], Conflict)
    assert results[1:-1] == [None] * (GAMES - 2)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM games WHERE id = $1", newcomer.game_id
        )
        == 1
    )


async def test_a_write_the_database_refuses_fails_alone(
    committer: GroupCommitter,
) -> None:
    games = await created_games(committer, GAMES)
    broken = replace(games[0].move("e2e4"), white_ms=2**40)  # not an integer column
    requests = [AppendEvents(games[0].game_id, 1, (broken,))]
    requests += [AppendEvents(g.game_id, 1, (g.move("e2e4"),)) for g in games[1:]]

    results = await asyncio.gather(
        *(committer.write(r) for r in requests), return_exceptions=True
    )

    assert isinstance(results[0], StorageError)
    assert results[1:] == [None] * (GAMES - 1)


async def test_writes_of_one_game_commit_in_the_order_sent(pool: asyncpg.Pool) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(max_batch=3, concurrency=4))
    await committer.start()
    try:
        game = GameScript()
        await committer.write(CreateGame(game.created()))
        moves = ["e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4"]
        writes = [
            committer.write(AppendEvents(game.game_id, 1, (game.move(m),)))
            for m in moves
        ]
        await asyncio.gather(*writes)
    finally:
        await committer.stop()

    rows = await pool.fetch(
        "SELECT uci FROM game_moves WHERE game_id = $1 ORDER BY ply", game.game_id
    )
    assert [r["uci"] for r in rows] == moves


async def test_listeners_hear_of_each_commit_with_the_new_states(
    pool: asyncpg.Pool,
) -> None:
    recorder = Recorder()
    committer = GroupCommitter(pool, listeners=[recorder])
    await committer.start()
    try:
        game = GameScript()
        await committer.write(CreateGame(game.created()))
        await committer.write(AppendEvents(game.game_id, 1, (game.move("c2c4"),)))
    finally:
        await committer.stop()

    last = recorder.batches[-1]
    assert last.outbox_rows == 1
    assert last.states[game.game_id].ply == 1
    assert last.states[game.game_id].fen == game.board.fen()


def pending(request: WriteRequest) -> PendingWrite:
    return PendingWrite(request, asyncio.get_running_loop().create_future())


async def test_send_refuses_writes_beyond_max_pending(pool: asyncpg.Pool) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(max_pending=2))
    queued = [pending(CreateGame(GameScript().created())) for _ in range(2)]
    for write in queued:
        committer.send(write)

    with pytest.raises(Overloaded):
        committer.send(pending(CreateGame(GameScript().created())))

    await committer.start()
    await committer.stop()
    await asyncio.gather(*(write.done for write in queued))


async def test_stop_commits_what_is_queued_then_refuses_writes(
    pool: asyncpg.Pool,
) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(window=30.0))
    await committer.start()
    queued = pending(CreateGame(GameScript().created()))
    committer.send(queued)

    await committer.stop()

    assert queued.done.done()
    assert queued.done.exception() is None
    with pytest.raises(StorageError):
        await committer.write(CreateGame(GameScript().created()))


async def test_writes_fail_with_storage_error_when_postgres_is_unreachable(
    database_url: str,
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    unreachable = await asyncpg.create_pool(nowhere, min_size=0, max_size=1)
    committer = GroupCommitter(unreachable)
    await committer.start()
    try:
        with pytest.raises(StorageError):
            await committer.write(CreateGame(GameScript().created()))
        assert committer.statistics().failed == 1
    finally:
        await committer.stop()
        await unreachable.close()
