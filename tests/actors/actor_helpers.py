"""Actors, parents and messages shared by the actor runtime's tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from gates import Gate as Gate
from gates import Hold as Hold
from livegame.actors import Actor, ActorCell, ActorRef, ActorSystem
from livegame.errors import BadRequest

# Messages a Worker understands.


@dataclass(frozen=True)
class Echo:
    """Reply with ``value``."""

    value: object


@dataclass(frozen=True)
class Bump:
    """Add one to the worker's count and reply with it."""


@dataclass(frozen=True)
class Crash:
    """Raise a plain exception: a crash."""

    reason: str = "boom"


@dataclass(frozen=True)
class Refuse:
    """Raise a LiveGameError: a refusal."""

    reason: str = "not now"


class Journal:
    """What every incarnation of a Worker did, in order."""

    def __init__(self) -> None:
        self.incarnations = 0
        # (incarnation, message) for every message that entered receive.
        self.handled: list[tuple[int, object]] = []
        # (hook, incarnation) for every lifecycle hook that ran.
        self.hooks: list[tuple[str, int]] = []
        # The error each on_restart was given.
        self.restart_causes: list[BaseException] = []

    def messages(self) -> list[object]:
        return [message for _, message in self.handled]


class Worker(Actor[Any]):
    """A test actor that writes everything it does into a Journal."""

    def __init__(self, journal: Journal) -> None:
        journal.incarnations += 1
        self.journal = journal
        self.incarnation = journal.incarnations
        self.count = 0

    async def on_start(self) -> None:
        self.journal.hooks.append(("start", self.incarnation))

    async def on_restart(self, error: BaseException) -> None:
        self.journal.hooks.append(("restart", self.incarnation))
        self.journal.restart_causes.append(error)

    async def on_stop(self) -> None:
        self.journal.hooks.append(("stop", self.incarnation))

    async def receive(self, message: Any) -> Any:
        self.journal.handled.append((self.incarnation, message))
        if isinstance(message, Echo):
            return message.value
        if isinstance(message, Bump):
            self.count += 1
            return self.count
        if isinstance(message, Crash):
            raise RuntimeError(message.reason)
        if isinstance(message, Refuse):
            raise BadRequest(message.reason)
        if isinstance(message, Hold):
            message.gate.entered.set()
            await message.gate.opened.wait()
            return "released"
        raise TypeError(f"a Worker cannot handle {message!r}")


class RecordingParent:
    """A Parent that notes what it hears and, unless told not to, restarts at once."""

    def __init__(self, *, restart: bool = True, delay: float = 0.0) -> None:
        self.restart = restart
        self.delay = delay
        self.failures: list[tuple[str, BaseException]] = []
        self.stopped: list[str] = []

    def child_failed(self, child: ActorCell[Any], error: BaseException) -> None:
        self.failures.append((child.path, error))
        if self.restart:
            child.restart(self.delay, error)

    def child_stopped(self, child: ActorCell[Any]) -> None:
        self.stopped.append(child.path)


async def start_worker(
    system: ActorSystem,
    journal: Journal,
    parent: RecordingParent,
    path: str = "/worker",
    *,
    capacity: int = 16,
) -> ActorCell[Any]:
    """Spawn a Worker under ``parent`` and wait until it has started."""
    cell = system.spawn(lambda: Worker(journal), path, parent=parent, capacity=capacity)
    await cell.wait_started()

    return cell


class Outcome:
    """The result of an ask made in the background: a reply or an error."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: object = None
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        state = "pending" if not self.done.is_set() else repr(self.error or self.reply)
        return f"<Outcome {state}>"


def ask_soon(
    task_group: anyio.abc.TaskGroup,
    ref: ActorRef[Any],
    message: object,
    timeout: float = 5.0,
) -> Outcome:
    """Ask ``ref`` in a new task; the returned Outcome fills in when it ends."""
    outcome = Outcome()

    async def ask() -> None:
        try:
            outcome.reply = await ref.ask(message, timeout)
        except Exception as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    task_group.start_soon(ask)

    return outcome


async def settle() -> None:
    """
    Let every task run until all of them wait.

    ``anyio.wait_all_tasks_blocked`` sleeps a tenth of a second whenever it
    finds a task still runnable; a few checkpoints first let the usual chains
    (a crash reported, a restart, the next message) finish, so it rarely has to.
    """
    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()
