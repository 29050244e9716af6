"""
The runtime behind one actor: its mailbox, its current instance, its loop.

A cell outlives the instances it runs. When an instance crashes the cell
stops taking messages, tells its parent, and waits for the parent's decision:
restart (a new instance, the same mailbox) or stop. Everything the cell does
happens in its own task, so the instance never sees two messages at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anyio
import structlog

from livegame.actors.actor import Actor, ActorContext
from livegame.actors.envelope import Envelope, fail
from livegame.actors.errors import (
    ActorCrashed,
    ActorKilled,
    ActorStopped,
    MailboxFull,
)
from livegame.actors.mailbox import Mailbox
from livegame.actors.ref import ActorRef
from livegame.actors.timers import Timers
from livegame.errors import LiveGameError
from livegame.telemetry.metrics import ActorMetrics, actor_metrics

if TYPE_CHECKING:
    from livegame.actors.system import ActorSystem

M = TypeVar("M")

log = structlog.get_logger("livegame.actors")

# How long on_stop may run when the cell is torn down.
STOP_HOOK_TIMEOUT = 5.0


class Status(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Failure:
    """The last crash of an actor, as the introspection shows it."""

    type: str
    message: str
    # Wall-clock time of the crash, seconds since the epoch.
    at: float


class Parent(Protocol):
    """Who hears about a cell's crashes and its end: its supervisor."""

    def child_failed(self, child: ActorCell[Any], error: BaseException) -> None: ...

    def child_stopped(self, child: ActorCell[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class _Fail:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _Restart:
    delay: float
    cause: BaseException | None


class _Stop:
    pass


_STOP = _Stop()
_Signal = _Fail | _Restart | _Stop


class ActorCell(Generic[M]):
    """Runs instances of one actor over one mailbox; see the module docstring."""

    def __init__(
        self,
        system: ActorSystem,
        path: str,
        factory: Callable[[], Actor[M]],
        parent: Parent,
        capacity: int,
    ) -> None:
        self.system = system
        self.path = path
        self.parent = parent
        self._factory = factory
        self.mailbox: Mailbox[Envelope] = Mailbox(capacity)
        # True once the cell refuses new messages (stopping or stopped).
        self.closed = False
        self.ref: ActorRef[M] = ActorRef(self)
        self.timers: Timers[M] = Timers(self)
        self._context: ActorContext[M] = ActorContext(self)
        # The class name of the running instance; the factory's until it runs.
        self.kind = getattr(factory, "__name__", type(factory).__name__)
        self.status = Status.STARTING
        self._instance: Actor[M] | None = None
        # Signals from the supervisor and the admin, handled before mail.
        self._control: deque[_Signal] = deque()
        # Set while the loop waits for mail or a signal.
        self._waiter: asyncio.Future[None] | None = None
        # True while instance code runs, so an interrupt must cancel it.
        self._busy = False
        # Why the running instance code is being cancelled, and whether the
        # parent must hear of it as a crash.
        self._interrupt: tuple[BaseException, bool] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._done = anyio.Event()
        # Set when the first instance has started, or the cell has ended.
        self._started = anyio.Event()
        self.processed = 0
        self.restarts = 0
        # The counters of the running instance's kind; None until one starts.
        self._metrics: ActorMetrics | None = None
        self.last_failure: Failure | None = None
        # Why the actor refused to start (an unknown game...), if it did.
        self.refusal: LiveGameError | None = None
        self.created_at = time.monotonic()
        self.started_at = self.created_at
        # When the last batch of messages ended, for passivation.
        self.last_active = self.created_at

    def __repr__(self) -> str:
        return (
            f"<{self.kind} {self.path} {self.status.value} "
            f"mailbox={len(self.mailbox)}/{self.mailbox.capacity}>"
        )

    @property
    def stopped(self) -> bool:
        """Whether the cell refuses new messages (stopping or stopped)."""
        return self.closed

    @property
    def idle(self) -> bool:
        """Running, with nothing queued and no message in hand."""
        return self.status is Status.RUNNING and not self._busy and not self.mailbox

    @property
    def awaiting_decision(self) -> bool:
        """
        Whether the actor has failed and nobody has ordered its restart yet.

        A supervisor acts on a crash report only then: a report queued behind
        a restart that already answered it (one-for-all, an escalation) is stale.
        """
        if self.status is not Status.FAILED or self.closed:
            return False
        return not any(isinstance(signal, _Restart) for signal in self._control)

    @property
    def instance(self) -> Actor[M] | None:
        return self._instance

    # What others call. All of it is synchronous and never blocks.

    def enqueue(self, envelope: Envelope) -> None:
        if self.closed:
            raise ActorStopped(f"{self.path} has stopped", actor=self.path)
        mailbox = self.mailbox
        if len(mailbox) >= mailbox.capacity:
            raise self.refuse()
        mailbox.append(envelope)
        if self._waiter is not None:
            self._wake()

    def refuse(self) -> MailboxFull:
        """Count a message refused for a full mailbox; return the error to raise."""
        actor_metrics(self.kind).mailbox_full.inc()

        return self.mailbox.refuse()

    def enqueue_system(self, envelope: Envelope) -> None:
        """Queue a runtime message (a child's crash...) even past capacity."""
        if self.status is Status.STOPPED:
            raise ActorStopped(f"{self.path} has stopped", actor=self.path)
        self.mailbox.put_system(envelope)
        if self._waiter is not None:
            self._wake()

    def fail(self, error: BaseException) -> None:
        """Crash after the message in hand, as if it had raised ``error``."""
        if not self.stopped:
            self._control.append(_Fail(error))
            self._wake()

    def kill(self, reason: str = "killed") -> None:
        """Make the actor fail as if it had crashed; its supervisor decides."""
        if self.stopped:
            raise ActorStopped(f"{self.path} has stopped", actor=self.path)
        error = ActorKilled(f"{self.path} {reason}", actor=self.path)
        if self.status is Status.RUNNING or self.status is Status.STARTING:
            self._interrupt_or_signal(error, report=True)

    def restart(self, delay: float, cause: BaseException | None = None) -> None:
        """
        Replace the instance after ``delay`` seconds, keeping the mailbox.

        A running instance is interrupted; the sender of the message in hand
        gets :class:`ActorCrashed`.
        """
        if self.stopped:
            return
        self._control.append(_Restart(delay, cause))
        if self._busy:
            error = ActorCrashed(f"{self.path} restarted by its supervisor")
            self._interrupt_or_signal(error, report=False)
        self._wake()

    def stop(self) -> None:
        """Stop after the message in hand; queued asks get ActorStopped."""
        if self.stopped:
            return
        self.status = Status.STOPPING
        self.closed = True
        self._control.appendleft(_STOP)
        self._wake()

    async def wait_stopped(self) -> None:
        await self._done.wait()

    async def wait_started(self) -> None:
        """Wait until ``on_start`` has run (or the cell ended trying)."""
        await self._started.wait()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _interrupt_or_signal(self, error: BaseException, *, report: bool) -> None:
        task = self._task
        if self._busy and task is not None and task is not asyncio.current_task():
            self._interrupt = (error, report)
            task.cancel()
        elif report:
            self._control.append(_Fail(error))
            self._wake()

    # The loop, in three phases: start, run, finish.

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            await self._start_instance(None)
            await self._run_loop()
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish()

    async def _run_loop(self) -> None:
        control = self._control
        mailbox = self.mailbox
        while True:
            if control:
                signal = control.popleft()
                if isinstance(signal, _Stop):
                    return
                await self._handle_signal(signal)
            elif self.status is Status.RUNNING and mailbox:
                await self._process_batch()
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter

    async def _process_batch(self) -> None:
        assert self._instance is not None
        receive = self._instance.receive
        mailbox = self.mailbox
        control = self._control
        handled = 0
        try:
            while mailbox and not control:
                envelope = mailbox.popleft()
                handled += 1
                self._busy = True
                try:
                    result = await receive(envelope[0])
                except LiveGameError as exc:
                    # A refusal, not a crash: the asker learns why.
                    fail(envelope, exc)
                except asyncio.CancelledError:
                    if not self._absorb_interrupt(envelope):
                        # The task itself is cancelled (the node is
                        # stopping): the sender still hears, at once.
                        fail(
                            envelope,
                            ActorStopped(f"{self.path} stopped", actor=self.path),
                        )
                        raise
                    return
                except Exception as exc:
                    fail(envelope, self._crashed(envelope, exc))
                    self._fail(exc)
                    return
                else:
                    future = envelope[1]
                    if future is not None and not future.done():
                        future.set_result(result)
                finally:
                    self._busy = False
        finally:
            self.processed += handled
            # Once per batch, not per message: the counter takes a lock.
            if self._metrics is not None:
                self._metrics.processed.inc(handled)
            self.last_active = time.monotonic()

    async def _handle_signal(self, signal: _Fail | _Restart) -> None:
        if isinstance(signal, _Fail):
            if self.status is Status.RUNNING or self.status is Status.STARTING:
                self._fail(signal.error)
            return

        self.status = Status.RESTARTING
        if signal.delay > 0 and not await self._sleep_unless_stopped(signal.delay):
            return
        await self._retire_instance()
        self.restarts += 1
        actor_metrics(self.kind).restarts.inc()
        await self._start_instance(signal.cause)

    async def _start_instance(self, cause: BaseException | None) -> None:
        self._busy = True
        try:
            instance = self._factory()
            instance.context = self._context
            self._instance = instance
            self.kind = type(instance).__name__
            self._metrics = actor_metrics(self.kind)
            if cause is None:
                await instance.on_start()
            else:
                await instance.on_restart(cause)
        except asyncio.CancelledError:
            if not self._absorb_interrupt(None):
                raise
            return
        except LiveGameError as exc:
            # The actor refuses to exist (an unknown game...): whoever waits
            # on it learns why, and the cell stops as if asked to.
            self._refuse_all(exc)
            return
        except Exception as exc:
            self._fail(exc)
            return
        finally:
            self._busy = False

        if self.status is not Status.STOPPING:
            self.status = Status.RUNNING
        self.started_at = time.monotonic()
        self._started.set()

    def _refuse_all(self, error: LiveGameError) -> None:
        self.refusal = error
        self.status = Status.STOPPING
        self.closed = True
        self._control.appendleft(_STOP)
        for envelope in self.mailbox.drain():
            fail(envelope, error)

    async def _retire_instance(self) -> None:
        instance, self._instance = self._instance, None
        self.timers.cancel_all()
        if instance is None:
            return
        try:
            with anyio.fail_after(STOP_HOOK_TIMEOUT):
                await instance.on_stop()
        except Exception as exc:
            log.warning("actor_stop_hook_failed", actor=self.path, error=repr(exc))

    async def _finish(self) -> None:
        self.status = Status.STOPPING
        self.closed = True
        await self._retire_instance()
        for envelope in self.mailbox.drain():
            fail(envelope, ActorStopped(f"{self.path} stopped", actor=self.path))
        self.status = Status.STOPPED
        self.system._unregister(self)
        self._started.set()
        self._done.set()
        self.parent.child_stopped(self)

    async def _sleep_unless_stopped(self, delay: float) -> bool:
        """Wait ``delay`` seconds; return False early if a stop arrives."""
        with anyio.move_on_after(delay):
            while not (self._control and isinstance(self._control[0], _Stop)):
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
            return False
        return True

    def _absorb_interrupt(self, envelope: Envelope | None) -> bool:
        """Turn our own cancellation into a failure; False if it is not ours."""
        if self._interrupt is None:
            return False
        error, report = self._interrupt
        self._interrupt = None
        task = self._task
        if task is not None:
            task.uncancel()
        if envelope is not None:
            fail(envelope, self._crashed(envelope, error))
        if report:
            self._fail(error)
        return True

    def _crashed(self, envelope: Envelope, error: BaseException) -> ActorCrashed:
        message = type(envelope[0]).__name__
        crashed = ActorCrashed(
            f"{self.path} crashed handling {message}: {error!r}", actor=self.path
        )
        crashed.__cause__ = error
        return crashed

    def _fail(self, error: BaseException) -> None:
        self.status = Status.FAILED
        self.last_failure = Failure(type(error).__name__, str(error), time.time())
        self.timers.cancel_all()
        self.parent.child_failed(self, error)
