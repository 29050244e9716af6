"""
Group commit: many games' writes in one PostgreSQL transaction.

Writes queue up while a batch commits. When no batch commits, a batch
leaves at once; else when ``max_batch`` writes wait, or ``window`` seconds
after its oldest write arrived, whichever comes first. Up to ``concurrency``
batches commit at once, each on a pooled connection of its own, kept
between batches. A batch takes at most one write per game, and none of a
game with a batch in flight, so one game's writes commit one batch after
the other, in the order they were sent. A write's future resolves only
after COMMIT.

After commits that wrote outbox rows, the committer notifies a PostgreSQL
channel, so a relay on any node wakes for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from livegame.errors import LiveGameError, Overloaded, StorageError
from livegame.persistence._translate import postgres_errors
from livegame.persistence.batch import BatchResult, write_batch
from livegame.persistence.requests import (
    CommitListener,
    CommittedBatch,
    PendingWrite,
    WriteRequest,
)
from livegame.telemetry import metrics

log = structlog.get_logger("livegame.persistence.committer")

# Sent after the commits it announces, not inside them: a notifying
# transaction holds a cluster-wide lock until its commit is on disk, so two
# batches that notified would flush one after the other. A transaction that
# only notifies writes nothing else, and PostgreSQL commits it without
# waiting for the disk.
_NOTIFY = "SELECT pg_notify($1, '')"


@dataclass(frozen=True, slots=True)
class GroupCommitConfig:
    # Flush as soon as this many writes wait.
    max_batch: int = 256
    # Or this many seconds after the oldest waiting write arrived, while
    # another batch commits.
    window: float = 0.002
    # Batches committing at once, each holding one pooled connection.
    concurrency: int = 2
    # Writes allowed to wait; beyond this, send() raises Overloaded.
    max_pending: int = 10_000
    # PostgreSQL channel notified after commits that wrote outbox rows; None
    # for no notification.
    notify_channel: str | None = "livegame_outbox"
    # Least seconds between two notifications: the commits in between share
    # the later one.
    notify_interval: float = 0.01


@dataclass(frozen=True, slots=True)
class CommitterStatistics:
    pending: int
    in_flight: int
    batches: int
    committed: int
    refused: int
    failed: int
    last_batch_size: int
    largest_batch_size: int


class _Counters:
    __slots__ = ("batches", "committed", "failed", "largest", "last", "refused")

    def __init__(self) -> None:
        self.batches = self.committed = self.refused = self.failed = 0
        self.last = self.largest = 0


class GroupCommitter:
    """
    Commit writes from many games in shared transactions.

    Start it with :meth:`start`, send :class:`PendingWrite` values with
    :meth:`send` (or use :meth:`write`), and stop it with :meth:`stop`, which
    commits what is queued first.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: GroupCommitConfig | None = None,
        listeners: Iterable[CommitListener] = (),
    ) -> None:
        self._pool = pool
        self._config = config or GroupCommitConfig()
        self._listeners = list(listeners)
        # Writes not yet in a batch, oldest first, with their arrival times.
        self._queue: deque[tuple[float, PendingWrite]] = deque()
        # Games with a batch in flight: their next writes wait.
        self._busy: set[str] = set()
        self._flushes: set[asyncio.Task[None]] = set()
        # Batches committing now; the committer is idle at zero with no queue.
        self._in_flight = 0
        # Set when there may be a batch to take; cleared when there is none.
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._slots = asyncio.Semaphore(self._config.concurrency)
        # Pooled connections kept between batches, at most one per slot: the
        # pool resets each connection it takes back, a round trip per batch.
        # stop() gives them back.
        self._kept: list[asyncpg.Connection] = []
        self._stopped = False
        self._runner: asyncio.Task[None] | None = None
        # Notifies the outbox channel; set again while it runs, it runs again.
        self._announcer: asyncio.Task[None] | None = None
        self._announce_again = False
        self._closing = False
        self._counters = _Counters()

    def __repr__(self) -> str:
        state = "closing" if self._closing else "running" if self._runner else "new"
        return (
            f"<GroupCommitter {state} pending={len(self._queue)}"
            f" in_flight={self._in_flight}>"
        )

    def add_listener(self, listener: CommitListener) -> None:
        """Tell ``listener`` about every batch committed from now on."""
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self, timeout: float = 10.0) -> None:
        """Commit the queued writes, then stop; fail what is left at the timeout."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("writer_stop_timeout", pending=len(self._queue))
        finally:
            self._stopped = True
            await self._cancel_runner()
            self._fail_queued(StorageError("the writer has stopped"))
            await self._give_back_kept()
            if self._announcer is not None:
                await asyncio.gather(self._announcer, return_exceptions=True)

    def send(self, write: PendingWrite) -> None:
        """
        Queue ``write`` for the next batch.

        Raises:
            Overloaded: ``max_pending`` writes wait already.
            StorageError: the committer is stopping.
        """
        if self._closing:
            raise StorageError("the writer has stopped", game_id=write.game_id)
        if len(self._queue) >= self._config.max_pending:
            raise Overloaded("too many writes wait", game_id=write.game_id)

        self._queue.append((asyncio.get_running_loop().time(), write))
        self._idle.clear()
        self._wakeup.set()
        if len(self._queue) >= self._config.max_batch:
            self._full.set()

    async def write(self, request: WriteRequest) -> None:
        """Send ``request`` and return once it has committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.send(PendingWrite(request, done))
        await done

    def statistics(self) -> CommitterStatistics:
        c = self._counters
        return CommitterStatistics(
            pending=len(self._queue),
            in_flight=self._in_flight,
            batches=c.batches,
            committed=c.committed,
            refused=c.refused,
            failed=c.failed,
            last_batch_size=c.last,
            largest_batch_size=c.largest,
        )

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await self._wait_window()
            await self._slots.acquire()

            batch = self._take_batch()
            if not batch:
                # Everything queued belongs to busy games; a flush ending wakes us.
                self._slots.release()
                self._wakeup.clear()
                self._check_idle()
                continue

            self._in_flight += 1
            task = asyncio.create_task(self._flush(batch), name="group-commit-flush")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _wait_window(self) -> None:
        # An idle writer has nothing to gather writes behind: waiting would
        # only add the window to each write's latency.
        if not self._queue or self._closing or self._in_flight == 0:
            return

        oldest = self._queue[0][0]
        delay = oldest + self._config.window - asyncio.get_running_loop().time()
        if delay > 0 and len(self._queue) < self._config.max_batch:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), delay)

    def _take_batch(self) -> list[PendingWrite]:
        batch: list[PendingWrite] = []
        held: deque[tuple[float, PendingWrite]] = deque()
        taken_games: set[str] = set()
        while self._queue and len(batch) < self._config.max_batch:
            arrived, write = self._queue.popleft()
            if write.done.done():
                continue  # the caller gave up and cancelled it
            if write.game_id in self._busy or write.game_id in taken_games:
                held.append((arrived, write))
            else:
                batch.append(write)
                taken_games.add(write.game_id)

        held.extend(self._queue)
        self._queue = held
        self._busy |= taken_games
        if not self._queue:
            self._full.clear()

        return batch

    async def _flush(self, batch: Sequence[PendingWrite]) -> None:
        try:
            result = await self._commit([w.request for w in batch])
        except StorageError as exc:
            self._fail_batch(batch, exc)
        except Exception as exc:
            log.exception("batch_crashed", size=len(batch))
            error = StorageError("the writer failed unexpectedly")
            error.__cause__ = exc
            self._fail_batch(batch, error)
        else:
            self._settle(batch, result)
        finally:
            self._in_flight -= 1
            self._busy.difference_update(w.game_id for w in batch)
            self._slots.release()
            if self._queue:
                self._wakeup.set()
            self._check_idle()

    async def _commit(self, requests: list[WriteRequest]) -> BatchResult:
        timer = metrics.db_query("group_commit").time()
        with timer, postgres_errors("group_commit", size=len(requests)):
            conn = self._kept.pop() if self._kept else await self._pool.acquire()
            try:
                result = await write_batch(conn, requests)
            except BaseException:
                # Broken, maybe, or left mid-query: the pool resets or closes it.
                await self._give_back(conn)
                raise

        if self._stopped:
            await self._give_back(conn)
        else:
            self._kept.append(conn)

        return result

    async def _give_back(self, conn: asyncpg.Connection) -> None:
        try:
            await self._pool.release(conn)
        except Exception as exc:
            # The pool closes a connection it cannot reset, and opens another.
            log.debug("writer_connection_dropped", error=repr(exc))

    async def _give_back_kept(self) -> None:
        try:
            while self._kept:
                await self._give_back(self._kept.pop())
        finally:
            # Cancelled: close the others, or the pool would wait for them.
            for conn in self._kept:
                conn.terminate()
            self._kept.clear()

    def _settle(self, batch: Sequence[PendingWrite], result: BatchResult) -> None:
        c = self._counters
        c.batches += 1
        c.last = len(batch)
        c.largest = max(c.largest, len(batch))
        for write, error in zip(batch, result.errors, strict=True):
            if error is None:
                c.committed += 1
                _succeed(write)
            else:
                c.refused += 1
                _fail(write, error)

        if result.states:
            self._tell_listeners(CommittedBatch(result.states, result.outbox_rows))
        if result.outbox_rows:
            self._announce()

    def _tell_listeners(self, committed: CommittedBatch) -> None:
        for listener in self._listeners:
            try:
                listener.committed(committed)
            except Exception:
                log.exception("commit_listener_failed", listener=repr(listener))

    def _announce(self) -> None:
        """Notify the outbox channel soon: once for any number of commits."""
        if self._config.notify_channel is None:
            return
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.create_task(
                self._notify(self._config.notify_channel), name="group-commit-notify"
            )
        else:
            self._announce_again = True

    async def _notify(self, channel: str) -> None:
        again = True
        while again:
            self._announce_again = False
            try:
                await self._pool.execute(_NOTIFY, channel)
            except Exception as exc:
                # Whatever the reason (asyncpg raises more than its error
                # family for a connection that died idle), the relay's sweep
                # finds the rows all the same, a little later.
                log.warning("outbox_notify_failed", channel=channel, error=repr(exc))
                return

            await asyncio.sleep(self._config.notify_interval)
            again = self._announce_again

    def _fail_batch(self, batch: Sequence[PendingWrite], error: StorageError) -> None:
        self._counters.failed += len(batch)
        log.warning("batch_failed", size=len(batch), error=str(error))
        for write in batch:
            _fail(write, error)

    def _check_idle(self) -> None:
        if not self._queue and self._in_flight == 0:
            self._idle.set()

    async def _cancel_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    def _fail_queued(self, error: LiveGameError) -> None:
        while self._queue:
            _, write = self._queue.popleft()
            _fail(write, error)


def _succeed(write: PendingWrite) -> None:
    if not write.done.done():
        write.done.set_result(None)


def _fail(write: PendingWrite, error: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(error)
