"""
The outbox relay: committed events to Kafka, at least once, in order per game.

The writer tells the relay after each commit that wrote outbox rows, and
each such commit also notifies a PostgreSQL channel, so the relay publishes
at once whichever node committed; a slow sweep catches anything missed (a
relay that was down, a lost notification). One relay in the cluster leads at
a time, by holding a session advisory lock on its own connection, so two
nodes never publish one game's rows side by side. While Kafka is down the
relay backs off (exponentially, with jitter), marks nothing, and the outbox
grows; nothing is lost. The leader also deletes rows published longer ago
than the retention (ten minutes by default), a few seconds' worth at a time,
so the outbox stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import structlog

from livegame.errors import StorageError
from livegame.persistence._translate import postgres_errors
from livegame.persistence.kafka import EventProducer, KafkaConfig
from livegame.persistence.outbox import (
    fetch_unpublished,
    mark_published,
    prune_published,
)
from livegame.persistence.requests import CommittedBatch
from livegame.supervisor import Backoff

log = structlog.get_logger("livegame.persistence.relay")

# Names the relay's advisory lock among the database's advisory locks.
RELAY_LOCK_KEY = 0x6C67_7265_6C61

# Seconds stop() waits for the relay's loop to end once cancelled.
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RelayConfig:
    # Rows read and published per round.
    batch_size: int = 500
    # Seconds between sweeps when nothing notifies the relay.
    sweep_interval: float = 5.0
    # Delay between attempts while Kafka or PostgreSQL fails.
    backoff: Backoff = field(
        default_factory=lambda: Backoff(initial=0.05, maximum=5.0, jitter=0.5)
    )
    # The channel commits notify (see GroupCommitConfig); None to not listen.
    notify_channel: str | None = "livegame_outbox"
    lock_key: int = RELAY_LOCK_KEY
    # Published rows older than this are deleted; None keeps them forever.
    retention: timedelta | None = timedelta(minutes=10)
    # Seconds between deletions of old published rows: often, so that each
    # deletes a few seconds' worth, not a spike of them.
    prune_interval: float = 5.0
    # Rows deleted per statement, and statements per deletion at most.
    prune_chunk: int = 5_000
    prune_chunks: int = 10


@dataclass(frozen=True, slots=True)
class RelayStatistics:
    # "starting", "leading", "standby" (another relay leads), "failing" or
    # "stopped".
    state: str
    published: int
    failures: int
    # Failures since the last successful round; 0 when healthy.
    failing_for: int
    idempotent: bool | None
    last_error: str | None

    @property
    def leader(self) -> bool:
        return self.state == "leading"


class OutboxRelay:
    """
    Publish outbox rows to Kafka and mark them published.

    Args:
        dsn: PostgreSQL DSN; the relay keeps one connection of its own, for
            its leader lock and notifications.
        kafka: where and how to publish.
        config: batch size, sweep interval, backoff.
        on_crash: called if the relay's loop dies of an unexpected error
            (a bug); the relay actor hands it to its supervisor.
    """

    def __init__(
        self,
        dsn: str,
        kafka: KafkaConfig,
        config: RelayConfig | None = None,
        *,
        on_crash: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._config = config or RelayConfig()
        self._producer = EventProducer(kafka)
        # stop() lets a round in progress finish for this long, then cancels.
        self._grace = kafka.request_timeout_ms / 1000 + 1.0
        self._on_crash = on_crash
        self._conn: asyncpg.Connection | None = None
        self._leader = False
        self._state = "starting"
        # Set by notify(): there may be rows to publish.
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._published = 0
        self._failures = 0
        self._failing_for = 0
        self._last_error: str | None = None
        # Loop time of the next deletion of old published rows.
        self._next_prune = 0.0

    def __repr__(self) -> str:
        return f"<OutboxRelay {self._state} published={self._published}>"

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop between rounds, so no publish is cut off half-way."""
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            _, running = await asyncio.wait({task}, timeout=self._grace)
            if running:
                task.cancel()
                await asyncio.wait({task}, timeout=_STOP_TIMEOUT)
        await self._close_connection()
        await self._stop_producer()
        self._state = "stopped"

    def notify(self) -> None:
        """Publish soon: new rows have been committed."""
        self._wake.set()

    def committed(self, batch: CommittedBatch) -> None:
        """Listen to the group committer: wake when a commit wrote outbox rows."""
        if batch.outbox_rows:
            self._wake.set()

    def statistics(self) -> RelayStatistics:
        return RelayStatistics(
            state=self._state,
            published=self._published,
            failures=self._failures,
            failing_for=self._failing_for,
            idempotent=self._producer.idempotent,
            last_error=self._last_error,
        )

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self._serve()
                except StorageError as exc:
                    await self._recover(exc)
        except Exception as exc:
            log.exception("relay_crashed")
            if self._on_crash is not None:
                self._on_crash(exc)

    async def _serve(self) -> None:
        conn = await self._connection()
        if not await self._lead(conn):
            # Another node leads; try again at the next sweep, not per commit.
            self._state = "standby"
            await self._pause(self._config.sweep_interval)
            return

        await self._producer.start()
        self._state = "leading"
        while not self._stopping.is_set():
            self._wake.clear()
            await self._publish_all(conn)
            self._failing_for = 0
            await self._prune(conn)
            await self._wait_for_work()

    async def _publish_all(self, conn: asyncpg.Connection) -> None:
        while not self._stopping.is_set():
            rows = await fetch_unpublished(conn, self._config.batch_size)
            if not rows:
                return

            acknowledged = await self._producer.publish(rows)
            await mark_published(conn, [row.id for row in acknowledged])
            self._published += len(acknowledged)
            if len(acknowledged) < len(rows):
                raise StorageError("kafka refused part of a batch", backend="kafka")

    async def _prune(self, conn: asyncpg.Connection) -> None:
        retention = self._config.retention
        now = asyncio.get_running_loop().time()
        if retention is None or now < self._next_prune:
            return

        self._next_prune = now + self._config.prune_interval
        chunk = self._config.prune_chunk
        deleted = 0
        for _ in range(self._config.prune_chunks):
            count = await prune_published(conn, retention, chunk)
            deleted += count
            if count < chunk:
                break
        if deleted:
            log.debug("outbox_pruned", rows=deleted)

    async def _wait_for_work(self) -> None:
        # A timeout is no error: it is time for a sweep.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._config.sweep_interval)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the relay is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _recover(self, error: StorageError) -> None:
        self._failures += 1
        self._failing_for += 1
        self._last_error = str(error)
        log.warning(
            "relay_failed",
            error=str(error),
            backend=error.context.get("backend"),
            attempt=self._failing_for,
        )
        # A fresh producer or connection next time; the other one is fine.
        if error.context.get("backend") == "kafka":
            await self._stop_producer()
        else:
            await self._close_connection()

        self._state = "failing"
        await self._pause(self._config.backoff.delay(self._failing_for))

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn

        self._leader = False
        with postgres_errors("connect", purpose="relay"):
            conn = await asyncpg.connect(self._dsn)
            channel = self._config.notify_channel
            if channel:
                await conn.add_listener(channel, self._notified)
        self._conn = conn

        return conn

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _lead(self, conn: asyncpg.Connection) -> bool:
        if not self._leader:
            with postgres_errors("relay_lock"):
                self._leader = await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", self._config.lock_key
                )
            if self._leader:
                log.info("relay_leading")

        return self._leader

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._leader = False
        if conn is None:
            return
        # Closing ends the session, which releases the leader lock.
        try:
            await conn.close(timeout=2.0)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            conn.terminate()

    async def _stop_producer(self) -> None:
        try:
            await self._producer.stop()
        except StorageError as exc:
            log.warning("kafka_producer_stop_failed", error=str(exc))
