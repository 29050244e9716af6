"""Migrations: versioned, recorded, idempotent, safe when nodes race."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from livegame.errors import StorageError
from livegame.persistence.migrate import available_migrations, migrate

pytestmark = pytest.mark.anyio


async def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in available_migrations()]

    assert versions == list(range(1, len(versions) + 1))


async def test_migrate_applies_every_version_once(empty_database: str) -> None:
    applied = await migrate(empty_database)
    again = await migrate(empty_database)

    assert applied == [m.version for m in available_migrations()]
    assert again == []


async def test_migrate_creates_the_tables(empty_database: str) -> None:
    await migrate(empty_database)

    conn = await asyncpg.connect(empty_database)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()

    names = {row["tablename"] for row in tables}
    assert {"games", "game_moves", "outbox", "schema_migrations"} <= names


async def test_nodes_migrating_together_apply_each_version_once(
    empty_database: str,
) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))

    applied = [version for result in results for version in result]
    assert sorted(applied) == [m.version for m in available_migrations()]


async def test_a_changed_migration_file_is_refused(empty_database: str) -> None:
    await migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited'")
    finally:
        await conn.close()

    with pytest.raises(StorageError, match="changed"):
        await migrate(empty_database)


async def test_an_unreachable_database_raises_storage_error() -> None:
    with pytest.raises(StorageError):
        await migrate("postgresql://postgres@127.0.0.1:1/postgres")
