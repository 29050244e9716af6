"""
Versioned schema migrations.

Each ``migrations/NNNN_name.sql`` file is one version. :func:`migrate` applies
the versions a database lacks, in order, each in its own transaction, and
records them in ``schema_migrations`` with a checksum. It holds an advisory
lock while it works, so nodes that start together apply each version once; it
is safe to call on every start.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from livegame.errors import StorageError
from livegame.persistence._translate import postgres_errors

log = structlog.get_logger("livegame.persistence.migrate")

# Any fixed number works; it names this lock among the database's advisory locks.
_LOCK_KEY = 0x6C67_6D69_6772

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """Return the migrations shipped with the package, by version."""
    folder = resources.files("livegame.persistence") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(
                Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )

    return sorted(found, key=lambda m: m.version)


async def migrate(dsn: str) -> list[int]:
    """
    Bring the database at ``dsn`` to the latest schema version.

    Returns:
        The versions applied by this call, empty if it was up to date.

    Raises:
        StorageError: PostgreSQL failed, or an applied migration's file has
            changed since it was applied.
    """
    with postgres_errors("connect", purpose="migrate"):
        conn = await asyncpg.connect(dsn)
    try:
        with postgres_errors("migrate"):
            return await _migrate_locked(conn)
    finally:
        await conn.close()


async def _migrate_locked(conn: asyncpg.Connection) -> list[int]:
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {row["version"]: row["checksum"] for row in rows}

        done = []
        for migration in available_migrations():
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue

            await _apply(conn, migration)
            done.append(migration.version)

        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise StorageError(
            f"migration {migration.version:04d}_{migration.name} changed after "
            "it was applied; add a new migration instead",
            version=migration.version,
        )


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum)"
            " VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )

    log.info("migration_applied", version=migration.version, name=migration.name)
