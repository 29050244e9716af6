"""Fixtures of the persistence tests: a pool, a committer, a journal, games."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from persistence_helpers import GameScript

from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.pool import create_pool


@pytest.fixture
def game() -> GameScript:
    return GameScript()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
def commit_config() -> GroupCommitConfig:
    return GroupCommitConfig()


@pytest.fixture
async def committer(
    pool: asyncpg.Pool, commit_config: GroupCommitConfig
) -> AsyncIterator[GroupCommitter]:
    committer = GroupCommitter(pool, commit_config)
    await committer.start()
    yield committer
    await committer.stop()


@pytest.fixture
def journal(pool: asyncpg.Pool, committer: GroupCommitter) -> PostgresJournal:
    return PostgresJournal(pool, committer)
