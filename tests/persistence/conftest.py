"""Fixtures of the persistence tests: a pool, a committer, a journal, games."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from persistence_helpers import GameScript

from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.migrate import migrate
from livegame.persistence.pool import create_pool


@pytest.fixture
async def empty_database(postgres_admin_url: str) -> AsyncIterator[str]:
    """DSN of a database of this test's own, with no tables, dropped after."""
    name = f"livegame_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def own_database(empty_database: str) -> str:
    """DSN of a migrated database of this test's own: its outbox is its own."""
    await migrate(empty_database)
    return empty_database


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
