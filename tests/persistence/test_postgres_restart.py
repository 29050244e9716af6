"""Writes while PostgreSQL restarts: refused while it is down, none lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from persistence_helpers import GameScript, wait_until

from livegame.actors.game.events import MovePlayed
from livegame.app.embedded import EmbeddedServer, postgres_server
from livegame.errors import StorageError
from livegame.persistence.committer import GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.migrate import migrate
from livegame.persistence.pool import create_pool

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A PostgreSQL of this test's own, which it may stop and start again."""
    with postgres_server(tmp_path) as server:
        yield server


async def test_writes_fail_while_postgres_is_down_and_commit_after_it_restarts(
    own_postgres: EmbeddedServer,
) -> None:
    await migrate(own_postgres.url)
    pool = await create_pool(own_postgres.url, min_size=2, max_size=4)
    committer = GroupCommitter(pool)
    await committer.start()
    journal = PostgresJournal(pool, committer)
    game = GameScript()
    acknowledged: list[MovePlayed] = []
    try:
        await journal.create(game.created())
        acknowledged.append(game.move("e2e4"))
        await journal.append(game.game_id, 1, [acknowledged[-1]])

        own_postgres.stop()
        lost = game.move("e7e5")
        with pytest.raises(StorageError):
            await journal.append(game.game_id, 1, [lost])

        own_postgres.start()
        game.board.pop()
        game.seq -= 1
        retry = game.move("c7c5")
        await wait_until(lambda: appended(journal, game.game_id, retry))
        acknowledged.append(retry)

        history = await journal.load(game.game_id)
    finally:
        await committer.stop()
        await pool.close()

    assert history is not None
    assert list(history.moves) == acknowledged


async def appended(journal: PostgresJournal, game_id: str, move: MovePlayed) -> bool:
    try:
        await journal.append(game_id, 1, [move])
    except StorageError:
        return False
    return True
