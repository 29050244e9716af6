"""
Reading and marking the transactional outbox.

The writer inserts a row per event in the event's own transaction; the relay
reads unpublished rows in id order, which within one game is seq order, and
marks them once Kafka has acknowledged them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from livegame.persistence._translate import postgres_errors
from livegame.telemetry import metrics

_UNPUBLISHED = """
SELECT id, event_id, game_id, seq, type, payload::text AS payload,
       trace_context
FROM outbox WHERE published_at IS NULL
ORDER BY id
LIMIT $1
"""

_MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"

_BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL"

_PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at IS NOT NULL AND published_at < now() - $1::interval
    LIMIT $2
)
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    game_id: str
    seq: int
    type: str
    # The Kafka value: the event's JSON, as stored.
    payload: str
    # The traceparent of the append that wrote the row; None if untraced.
    trace_context: str | None = None


async def fetch_unpublished(conn: asyncpg.Connection, limit: int) -> list[OutboxRow]:
    """Return up to ``limit`` unpublished rows, oldest first."""
    with metrics.db_query("outbox_fetch").time(), postgres_errors("outbox_fetch"):
        rows = await conn.fetch(_UNPUBLISHED, limit)

    # Columns in the order of the fields.
    return [OutboxRow(*row) for row in rows]


async def mark_published(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    """Record that Kafka has acknowledged the rows with these ids."""
    if not ids:
        return
    timer = metrics.db_query("outbox_mark").time()
    with timer, postgres_errors("outbox_mark", rows=len(ids)):
        await conn.execute(_MARK, list(ids))


async def outbox_backlog(db: asyncpg.Pool | asyncpg.Connection) -> int:
    """Return how many outbox rows wait to be published (for a gauge)."""
    with postgres_errors("outbox_backlog"):
        count: int = await db.fetchval(_BACKLOG)

    return count


async def prune_published(
    db: asyncpg.Pool | asyncpg.Connection, age: timedelta, limit: int
) -> int:
    """Delete up to ``limit`` rows published more than ``age`` ago; return how many."""
    with metrics.db_query("outbox_prune").time(), postgres_errors("outbox_prune"):
        status: str = await db.execute(_PRUNE, age, limit)

    return int(status.rsplit(" ", 1)[-1])
