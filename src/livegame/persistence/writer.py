"""
The persistence actors: the writer and the outbox relay.

The writer actor (``/system/persistence/writer``) owns a
:class:`~livegame.persistence.committer.GroupCommitter`: journals send it
writes through a :class:`WriterSink`, and it commits them in groups. The
relay actor (``/system/persistence/relay``) owns an
:class:`~livegame.persistence.relay.OutboxRelay`, woken after each commit
that wrote outbox rows. Both rebuild what they own on a restart; their refs,
and so the sink and the wake-ups, stay valid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import asyncpg
import structlog

from livegame.actors.actor import Actor
from livegame.actors.ref import ActorRef
from livegame.errors import LiveGameError, Overloaded, StorageError
from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.kafka import KafkaConfig
from livegame.persistence.outbox import outbox_backlog
from livegame.persistence.relay import OutboxRelay, RelayConfig
from livegame.persistence.requests import CommitListener, CommittedBatch, PendingWrite
from livegame.supervisor import ChildSpec
from livegame.telemetry import metrics

log = structlog.get_logger("livegame.persistence.writer")

WRITER = "writer"
RELAY = "relay"
# Seconds between readings of the outbox backlog.
BACKLOG_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class Flush:  # -> None
    """Commit what is queued and stop taking writes: the node is draining."""


@dataclass(frozen=True, slots=True)
class Wake:
    """Rows were committed to the outbox: publish them."""


@dataclass(frozen=True, slots=True)
class Drain:  # -> int, the rows still unpublished
    timeout: float


@dataclass(frozen=True, slots=True)
class _MeasureBacklog:
    pass


class WriterActor(Actor[PendingWrite | Flush]):
    """Group-commits the writes journals send it; one committer per incarnation."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: GroupCommitConfig,
        listeners: Sequence[CommitListener],
    ) -> None:
        self._pool = pool
        self._config = config
        self._listeners = list(listeners)
        self._committer: GroupCommitter | None = None

    async def on_start(self) -> None:
        self._committer = GroupCommitter(self._pool, self._config, self._listeners)
        await self._committer.start()

    async def on_stop(self) -> None:
        if self._committer is not None:
            await self._committer.stop()

    async def receive(self, message: PendingWrite | Flush) -> None:
        assert self._committer is not None
        if isinstance(message, Flush):
            await self._committer.stop()
            return
        try:
            self._committer.send(message)
        except LiveGameError as error:
            # A tell has no asker: the journal waits on the write's future.
            if not message.done.done():
                message.done.set_exception(error)


class WriterSink:
    """The journals' way to the writer actor: a tell that never blocks."""

    __slots__ = ("_ref",)

    def __init__(self, ref: ActorRef[Any]) -> None:
        self._ref = ref

    def __repr__(self) -> str:
        return f"<WriterSink {self._ref.path}>"

    def send(self, write: PendingWrite) -> None:
        try:
            self._ref.tell(write)
        except Overloaded:
            raise
        except LiveGameError as error:
            raise StorageError(
                "the writer is not running", game_id=write.game_id
            ) from error


class RelayActor(Actor[Wake | Drain | _MeasureBacklog]):
    """Runs the outbox relay; a crash of its loop is this actor's crash."""

    def __init__(
        self, pool: asyncpg.Pool, dsn: str, kafka: KafkaConfig, config: RelayConfig
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._kafka = kafka
        self._config = config
        self._relay: OutboxRelay | None = None

    async def on_start(self) -> None:
        self._relay = OutboxRelay(
            self._dsn, self._kafka, self._config, on_crash=self.context.fail
        )
        await self._relay.start()
        self.context.timers.start_periodic(
            "backlog", BACKLOG_INTERVAL, _MeasureBacklog()
        )

    async def on_stop(self) -> None:
        if self._relay is not None:
            await self._relay.stop()

    async def receive(self, message: Wake | Drain | _MeasureBacklog) -> int | None:
        assert self._relay is not None
        if isinstance(message, Wake):
            self._relay.notify()
            return None
        if isinstance(message, Drain):
            return await self._drain(message.timeout)
        await self._measure_backlog()
        return None

    async def _measure_backlog(self) -> int:
        try:
            backlog = await outbox_backlog(self._pool)
        except StorageError as error:
            log.debug("outbox_backlog_unavailable", error=str(error))
            return -1
        metrics.OUTBOX_BACKLOG.set(backlog)
        return backlog

    async def _drain(self, timeout: float) -> int:
        assert self._relay is not None
        backlog = -1
        with anyio.move_on_after(timeout):
            while True:
                self._relay.notify()
                backlog = await self._measure_backlog()
                if backlog == 0:
                    break
                # The relay publishes on its own task; look again shortly.
                await anyio.sleep(0.05)

        return backlog


class RelayWakeup:
    """A commit listener that wakes the relay actor after outbox writes."""

    __slots__ = ("_ref",)

    def __init__(self, ref: ActorRef[Any]) -> None:
        self._ref = ref

    def committed(self, batch: CommittedBatch) -> None:
        # When the relay cannot take it, its sweep and the database
        # notification catch up.
        if batch.outbox_rows:
            with contextlib.suppress(LiveGameError):
                self._ref.tell(Wake())


@dataclass(slots=True)
class Persistence:
    """The persistence children of a node, and the handles others need."""

    specs: list[ChildSpec]
    sink: WriterSink
    # Where the children run, and how to find a running actor's ref.
    path: str
    resolve: Any

    async def flush(self, timeout: float = 10.0) -> int:
        """Commit queued writes, then publish the outbox; return rows left."""
        await self.resolve(f"{self.path}/{WRITER}").ask(Flush(), timeout)
        relay = self.resolve(f"{self.path}/{RELAY}")
        left: int = await relay.ask(Drain(timeout), timeout + 1)
        if left:
            log.warning("outbox_not_drained", rows=left)
        return left


class _LateRef:
    """A ref resolved by path on first use: children exist only after start."""

    __slots__ = ("_path", "_ref", "_resolve")

    def __init__(self, path: str, resolve: Any) -> None:
        self._path = path
        self._resolve = resolve
        self._ref: ActorRef[Any] | None = None

    @property
    def path(self) -> str:
        return self._path

    def tell(self, message: Any) -> None:
        if self._ref is None:
            self._ref = self._resolve(self._path)
        self._ref.tell(message)


def persistence_children(
    pool: asyncpg.Pool,
    dsn: str,
    commit: GroupCommitConfig,
    kafka: KafkaConfig,
    relay: RelayConfig,
    *,
    listeners: Sequence[CommitListener] = (),
    resolve: Any,
    path: str = "/system/persistence",
) -> Persistence:
    """
    Return the writer and relay child specs, the writer's sink, and flush.

    ``resolve(path)`` returns the ref of a running actor (the actor system's
    ``ref``); the sink and the relay wake-up resolve their targets lazily.
    """
    writer_ref: Any = _LateRef(f"{path}/{WRITER}", resolve)
    relay_ref: Any = _LateRef(f"{path}/{RELAY}", resolve)
    wakeup = RelayWakeup(relay_ref)
    specs = [
        ChildSpec(
            WRITER,
            lambda: WriterActor(pool, commit, [wakeup, *listeners]),
            capacity=commit.max_pending,
        ),
        ChildSpec(RELAY, lambda: RelayActor(pool, dsn, kafka, relay)),
    ]
    return Persistence(specs, WriterSink(writer_ref), path, resolve)
