"""Actors and messages shared by the supervision tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from gates import Gate as Gate
from gates import Hold as Hold
from livegame.actors import Actor, ActorRef

# Messages a Child understands.


@dataclass(frozen=True)
class Echo:
    value: object


@dataclass(frozen=True)
class Bump:
    """Add one to the child's count and reply with it."""


@dataclass(frozen=True)
class Crash:
    reason: str = "boom"


@dataclass(frozen=True)
class Quit:
    """Stop on purpose: the child ends without a crash."""


class Tree:
    """What happened to every child of a test tree: hooks and messages, in order."""

    def __init__(self) -> None:
        # (path, what): "start", "restart", "stop", or a handled message.
        self.events: list[tuple[str, object]] = []
        self.made: Counter[str] = Counter()
        # The errors each path's on_restart was given.
        self.causes: dict[str, list[BaseException]] = {}
        # anyio.current_time() of each hook, by path.
        self.times: dict[str, list[float]] = {}

    def of(self, path: str) -> list[object]:
        return [what for p, what in self.events if p == path]

    def hooks(self, path: str) -> list[object]:
        return [what for what in self.of(path) if what in ("start", "restart", "stop")]

    def note(self, path: str, what: object) -> None:
        self.events.append((path, what))
        self.times.setdefault(path, []).append(anyio.current_time())


class Child(Actor[Any]):
    """A supervised test actor that notes its hooks and messages in a Tree."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.count = 0

    async def on_start(self) -> None:
        self.tree.note(self.context.path, "start")

    async def on_restart(self, error: BaseException) -> None:
        self.tree.causes.setdefault(self.context.path, []).append(error)
        self.tree.note(self.context.path, "restart")

    async def on_stop(self) -> None:
        self.tree.note(self.context.path, "stop")

    async def receive(self, message: Any) -> Any:
        self.tree.note(self.context.path, message)
        if isinstance(message, Echo):
            return message.value
        if isinstance(message, Bump):
            self.count += 1
            return self.count
        if isinstance(message, Crash):
            raise RuntimeError(message.reason)
        if isinstance(message, Quit):
            self.context.stop_self()
            return "bye"
        if isinstance(message, Hold):
            message.gate.entered.set()
            await message.gate.opened.wait()
            return "released"
        raise TypeError(f"a Child cannot handle {message!r}")


class Outcome:
    """The result of an ask made in the background: a reply or an error."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: object = None
        self.error: BaseException | None = None


def ask_soon(
    task_group: anyio.abc.TaskGroup, ref: ActorRef[Any], message: object
) -> Outcome:
    """Ask ``ref`` in a new task; the returned Outcome fills in when it ends."""
    outcome = Outcome()

    async def ask() -> None:
        try:
            outcome.reply = await ref.ask(message)
        except Exception as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    task_group.start_soon(ask)

    return outcome


async def settle() -> None:
    """Let every task run until all of them wait (see tests/actors)."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()


async def wait_until(condition: Any, timeout: float = 2.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)
