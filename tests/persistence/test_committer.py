"""Group commit: many games per transaction, each write judged on its own."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

import asyncpg
import pytest
from persistence_helpers import START_MS, GameScript, wait_until
from test_state import appends_of_a_game

from livegame.app.embedded import free_port
from livegame.errors import (
    Conflict,
    Fenced,
    GameNotFound,
    GameOver,
    LiveGameError,
    Overloaded,
    StorageError,
)
from livegame.persistence.batch import write_batch
from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.requests import (
    AppendEvents,
    CommittedBatch,
    CreateGame,
    PendingWrite,
    WriteRequest,
)
from livegame.persistence.state import OwnedBoard, check_append, initial_state

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
    # A long window: while a batch commits, the next one leaves only when
    # max_batch writes wait.
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


async def test_committed_rows_hold_what_the_checks_compute(
    pool: asyncpg.Pool,
) -> None:
    """The statement's row changes agree with check_append, shape by shape."""
    recorder = Recorder()
    committer = GroupCommitter(pool, listeners=[recorder])
    journal = PostgresJournal(pool, committer)
    games = [GameScript(initial_ms=None if i % 2 else 300_000) for i in range(4)]
    expected = {g.game_id: OwnedBoard(initial_state(g.created()), 1) for g in games}
    changes = list(zip(*(appends_of_a_game(g) for g in games), strict=True))
    await committer.start()
    try:
        await asyncio.gather(*(journal.create(g.created()) for g in games))
        for events_of_games in changes:
            appends = zip(games, events_of_games, strict=True)
            await asyncio.gather(*(journal.append(g.game_id, 1, e) for g, e in appends))
            for game, events in zip(games, events_of_games, strict=True):
                expected[game.game_id] = check_append(expected[game.game_id], 1, events)
    finally:
        await committer.stop()

    for game in games:
        assert recorder.batches[-1].states[game.game_id] == expected[game.game_id].state
        assert await journal.board(game.game_id) == expected[game.game_id].state


async def test_times_keep_their_milliseconds(
    pool: asyncpg.Pool, journal: PostgresJournal
) -> None:
    game = GameScript()
    created = replace(game.created(), at_ms=START_MS + 7)
    moves = [replace(game.move("e2e4"), at_ms=START_MS + 1_001)]
    moves.append(replace(game.move("e7e5"), at_ms=START_MS + 2_999))
    ended = replace(game.end("resign", "white", "resignation"), at_ms=START_MS + 3_123)
    await write_now(pool, CreateGame(created))
    for event in [*moves, ended]:
        await write_now(pool, AppendEvents(game.game_id, 1, (event,)))

    history = await journal.load(game.game_id)
    board = await journal.board(game.game_id)

    assert history is not None
    assert board is not None
    assert history.created == created
    assert list(history.moves) == moves
    assert history.ended == ended
    assert board.updated_at_ms == ended.at_ms


async def test_each_refused_append_says_why_and_the_others_commit(
    committer: GroupCommitter, pool: asyncpg.Pool
) -> None:
    games = await created_games(committer, GAMES)
    fenced, taken, over, gap = games[:4]
    await PostgresJournal(pool, committer).claim(fenced.game_id, 7)
    await write_now(pool, AppendEvents(taken.game_id, 1, (taken.move("e2e4"),)))
    ending = over.end("resign", "white", "resignation")
    await write_now(pool, AppendEvents(over.game_id, 1, (ending,)))
    taken.seq -= 1  # its next move takes the seq of its last one
    first = gap.move("e2e4")
    gap.move("e7e5")  # never sent: a gap inside the next append
    requests: list[WriteRequest] = [
        AppendEvents(fenced.game_id, 1, (fenced.move("e2e4"),)),
        AppendEvents(taken.game_id, 1, (taken.move("e7e5"),)),
        AppendEvents(over.game_id, 1, (over.move("e2e4"),)),
        AppendEvents(gap.game_id, 1, (first, gap.move("g1f3"))),
        AppendEvents("nope", 1, (GameScript("nope").move("e2e4"),)),
    ]
    others = games[5:]
    requests += [AppendEvents(g.game_id, 1, (g.move("d2d4"),)) for g in others]

    results = await asyncio.gather(
        *(committer.write(r) for r in requests), return_exceptions=True
    )

    refused = [Fenced, Conflict, GameOver, Conflict, GameNotFound]
    assert [type(r) for r in results[:5]] == refused
    assert results[5:] == [None] * len(others)
    assert len(await transactions_of(pool, others)) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE game_id = ANY($1::text[]) AND seq > 1",
            [g.game_id for g in games[:4]],
        )
        == 2
    )  # the move of `taken` and the end of `over`, both before the batch


async def test_a_value_json_cannot_carry_fails_alone(
    committer: GroupCommitter,
) -> None:
    games = await created_games(committer, GAMES)
    broken = replace(games[0].move("e2e4"), white_ms=2**70)
    requests = [AppendEvents(games[0].game_id, 1, (broken,))]
    requests += [AppendEvents(g.game_id, 1, (g.move("e2e4"),)) for g in games[1:]]

    results = await asyncio.gather(
        *(committer.write(r) for r in requests), return_exceptions=True
    )

    assert isinstance(results[0], StorageError)
    assert results[1:] == [None] * (GAMES - 1)


async def test_a_games_next_write_waits_for_the_next_batch(
    pool: asyncpg.Pool,
) -> None:
    games = [GameScript() for _ in range(GAMES - 1)]
    for game in games:
        await write_now(pool, CreateGame(game.created()))
    hot = games[0]
    requests = [AppendEvents(g.game_id, 1, (g.move("e2e4"),)) for g in games]
    requests.append(AppendEvents(hot.game_id, 1, (hot.move("e7e5"),)))
    committer = GroupCommitter(pool, GroupCommitConfig(max_batch=GAMES, window=1.0))
    await committer.start()
    try:
        # max_batch writes wait: a batch leaves at once, without the second
        # write of the hot game, which leaves in the next one.
        await asyncio.gather(*(committer.write(r) for r in requests))
        stats = committer.statistics()
    finally:
        await committer.stop()

    assert (stats.batches, stats.largest_batch_size) == (2, GAMES - 1)
    rows = await pool.fetch(
        "SELECT uci FROM game_moves WHERE game_id = $1 ORDER BY ply", hot.game_id
    )
    assert [r["uci"] for r in rows] == ["e2e4", "e7e5"]


async def test_write_batch_commits_a_games_writes_in_the_order_given(
    pool: asyncpg.Pool,
) -> None:
    game, other = GameScript(), GameScript()
    requests: list[WriteRequest] = [
        CreateGame(game.created()),
        CreateGame(other.created()),
        AppendEvents(game.game_id, 1, (game.move("e2e4"),)),
        AppendEvents(game.game_id, 1, (game.move("e7e5"),)),
        CreateGame(other.created()),
    ]

    async with pool.acquire() as conn:
        result = await write_batch(conn, requests)

    assert result.errors[:4] == [None] * 4
    assert isinstance(result.errors[4], Conflict)
    assert result.states[game.game_id].ply == 2
    assert result.outbox_rows == 4


async def test_a_commit_that_wrote_outbox_rows_notifies_the_channel(
    pool: asyncpg.Pool, database_url: str
) -> None:
    channel = f"test_outbox_{secrets.token_hex(4)}"
    notified = asyncio.Event()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(channel, lambda *_: notified.set())
    committer = GroupCommitter(pool, GroupCommitConfig(notify_channel=channel))
    await committer.start()
    try:
        await committer.write(CreateGame(GameScript().created()))
        await asyncio.wait_for(notified.wait(), 10)
    finally:
        await committer.stop()
        await listener.close()


async def waiting_on_locks(pool: asyncpg.Pool, count: int) -> bool:
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(waiting == count)


async def write_now(pool: asyncpg.Pool, request: WriteRequest) -> None:
    """Commit ``request`` in a batch of its own; fail the test if refused."""
    async with pool.acquire() as conn:
        result = await write_batch(conn, [request])
    assert result.errors == [None]


async def test_commits_during_a_notification_get_one_of_their_own(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """A commit after a notification was sent is announced by a later one."""
    channel = f"test_outbox_{secrets.token_hex(4)}"
    heard: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(channel, lambda *_: heard.put_nowait(loop.time()))
    interval = 0.2
    config = GroupCommitConfig(notify_channel=channel, notify_interval=interval)
    committer = GroupCommitter(pool, config)
    await committer.start()
    try:
        await committer.write(CreateGame(GameScript().created()))
        first = await asyncio.wait_for(heard.get(), 10)
        await committer.write(CreateGame(GameScript().created()))
        await committer.write(CreateGame(GameScript().created()))
        second = await asyncio.wait_for(heard.get(), 10)
    finally:
        await committer.stop()
        await listener.close()

    assert second - first >= interval * 0.9


async def test_stop_gives_the_kept_connections_back_to_the_pool(
    pool: asyncpg.Pool,
) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(concurrency=2))
    await committer.start()
    games = [GameScript() for _ in range(4)]
    await asyncio.gather(*(committer.write(CreateGame(g.created())) for g in games))
    kept = pool.get_size() - pool.get_idle_size()

    await committer.stop()

    assert 1 <= kept <= 2
    assert pool.get_idle_size() == pool.get_size()


async def test_a_kept_connection_that_died_fails_one_batch_at_most(
    pool: asyncpg.Pool,
) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(concurrency=1))
    await committer.start()
    try:
        await committer.write(CreateGame(GameScript().created()))
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        writes = [CreateGame(GameScript().created()) for _ in range(2)]
        first = await asyncio.gather(committer.write(writes[0]), return_exceptions=True)
        await committer.write(writes[1])
    finally:
        await committer.stop()

    assert killed >= 1
    assert first == [None] or isinstance(first[0], StorageError)


async def test_two_batches_waiting_on_the_same_rows_commit_one_then_refuse(
    pool: asyncpg.Pool,
) -> None:
    """Two owners' batches of the same appends: one commits, the other is refused."""
    first, second = GameScript(), GameScript()
    for game in (first, second):
        await write_now(pool, CreateGame(game.created()))
    moves = {g.game_id: g.move("e2e4") for g in (first, second)}
    ids = [first.game_id, second.game_id]

    async def batch(game_ids: list[str]) -> list[LiveGameError | None]:
        requests = [AppendEvents(i, 1, (moves[i],)) for i in game_ids]
        async with pool.acquire() as conn:
            return (await write_batch(conn, requests)).errors

    async with pool.acquire() as blocker, blocker.transaction():
        # Both batches wait on these locks, then take the rows at once.
        await blocker.execute(
            "SELECT 1 FROM games WHERE id = ANY($1::text[]) FOR UPDATE", ids
        )
        batches = [
            asyncio.create_task(batch(ids)),
            asyncio.create_task(batch(ids[::-1])),
        ]
        await wait_until(lambda: waiting_on_locks(pool, 2))

    outcomes = await asyncio.gather(*batches)

    assert sorted(outcomes, key=lambda errors: errors[0] is not None)[0] == [None] * 2
    refused = [error for errors in outcomes for error in errors if error is not None]
    assert [type(error) for error in refused] == [Conflict, Conflict]


@pytest.mark.parametrize("white_ms", [2**40, 2**70], ids=["int4", "json"])
async def test_a_lone_write_the_database_refuses_is_refused(
    pool: asyncpg.Pool, white_ms: int
) -> None:
    game = GameScript()
    await write_now(pool, CreateGame(game.created()))
    broken = replace(game.move("e2e4"), white_ms=white_ms)
    committer = GroupCommitter(pool)
    await committer.start()
    try:
        with pytest.raises(StorageError, match="refused"):
            await committer.write(AppendEvents(game.game_id, 1, (broken,)))
        stats = committer.statistics()
    finally:
        await committer.stop()

    assert (stats.refused, stats.failed) == (1, 0)


async def test_a_write_to_an_idle_committer_leaves_without_waiting_for_the_window(
    pool: asyncpg.Pool,
) -> None:
    committer = GroupCommitter(pool, GroupCommitConfig(window=30.0))
    await committer.start()
    try:
        await asyncio.wait_for(committer.write(CreateGame(GameScript().created())), 10)
    finally:
        await committer.stop()
