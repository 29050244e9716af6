"""The asyncpg connection pool that the writer, the relay and reads share."""

from __future__ import annotations

import asyncpg

from livegame.persistence._translate import postgres_errors

# Prepared statements cached per connection; the writer uses a handful.
_STATEMENT_CACHE_SIZE = 256


async def create_pool(
    dsn: str,
    *,
    min_size: int = 20,
    max_size: int = 40,
    command_timeout: float = 5.0,
) -> asyncpg.Pool:
    """
    Open a pool of ``min_size`` to ``max_size`` connections to ``dsn``.

    asyncpg prepares each statement once per connection and reuses it, so
    the writer's few statements are planned once.

    Raises:
        StorageError: PostgreSQL cannot be reached.
    """
    with postgres_errors("connect", min_size=min_size, max_size=max_size):
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            statement_cache_size=_STATEMENT_CACHE_SIZE,
            reset=_keep_session,
        )
    assert pool is not None  # create_pool returns None only when not awaited

    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """
    Hand a connection back to the pool as it is.

    asyncpg's default reset is a query per release (closing cursors,
    unlistening, resetting settings, releasing advisory locks), a round trip
    for state that connections of this pool never take: their locks and
    listeners live on connections of their own (the relay's, the
    migrator's). An open transaction is still rolled back by the pool.
    """
