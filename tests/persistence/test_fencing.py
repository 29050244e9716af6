"""Two nodes that both believe they own a game can never both commit a move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from persistence_helpers import GameScript

from livegame.errors import Conflict, Fenced
from livegame.persistence.committer import GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.pool import create_pool

pytestmark = pytest.mark.anyio


@pytest.fixture
async def second_node(database_url: str) -> AsyncIterator[PostgresJournal]:
    """A journal with its own pool and writer, as another node would have."""
    pool = await create_pool(database_url, min_size=1, max_size=3)
    committer = GroupCommitter(pool)
    await committer.start()
    yield PostgresJournal(pool, committer)
    await committer.stop()
    await pool.close()


async def test_only_one_of_two_racing_owners_commits_each_move(
    journal: PostgresJournal, second_node: PostgresJournal, pool: asyncpg.Pool
) -> None:
    games = [GameScript() for _ in range(20)]
    for game in games:
        await journal.create(game.created())

    # Both nodes play a different first move in every game, at once.
    old_owner = [journal.append(g.game_id, 1, [g.move("e2e4")]) for g in games]
    for game in games:
        game.board.pop()
        game.seq -= 1
    new_owner = [second_node.append(g.game_id, 2, [g.move("d2d4")]) for g in games]
    results = await asyncio.gather(*old_owner, *new_owner, return_exceptions=True)

    for old, new in zip(results[: len(games)], results[len(games) :], strict=True):
        outcomes = [old, new]
        assert outcomes.count(None) == 1
        refused = next(o for o in outcomes if o is not None)
        assert isinstance(refused, Conflict)  # Fenced is a Conflict too
    stored = await pool.fetchval(
        "SELECT count(*) FROM game_moves WHERE game_id = ANY($1::text[])",
        [g.game_id for g in games],
    )
    assert stored == len(games)


async def test_after_a_claim_the_old_owner_is_fenced_on_every_game(
    journal: PostgresJournal, second_node: PostgresJournal
) -> None:
    games = [GameScript() for _ in range(10)]
    for game in games:
        await journal.create(game.created())
        await second_node.claim(game.game_id, 2)

    results = await asyncio.gather(
        *(journal.append(g.game_id, 1, [g.move("e2e4")]) for g in games),
        return_exceptions=True,
    )

    assert all(isinstance(r, Fenced) for r in results)
