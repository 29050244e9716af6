"""
The supervisor actor: starts children, watches them, restarts them.

A supervisor is an actor like any other; its children report crashes and
ends through its mailbox, so it handles one at a time. When restarts come
faster than its intensity allows, it fails itself and its own parent decides.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from livegame.actors.actor import Actor
from livegame.actors.cell import ActorCell
from livegame.actors.errors import ActorCrashed, ActorError, ActorExists
from livegame.actors.ref import ActorRef
from livegame.actors.system import DEFAULT_CAPACITY
from livegame.supervisor.policy import (
    Backoff,
    Intensity,
    RestartIntensityExceeded,
    RestartType,
    RestartWindow,
    Strategy,
)

log = structlog.get_logger("livegame.supervisor")


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child and whether it comes back."""

    name: str
    factory: Callable[[], Actor[Any]]
    restart: RestartType = RestartType.PERMANENT
    capacity: int = DEFAULT_CAPACITY


# Messages a supervisor receives.


@dataclass(frozen=True, slots=True)
class StartChild:  # -> ActorRef
    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class StopChild:  # -> None
    name: str


@dataclass(frozen=True, slots=True)
class ChildFailed:
    child: ActorCell[Any]
    error: BaseException


@dataclass(frozen=True, slots=True)
class ChildStopped:
    child: ActorCell[Any]


class SupervisorLink:
    """The Parent of a supervisor's children: forwards their news to its mailbox."""

    __slots__ = ("_cell", "spec")

    def __init__(self, cell: ActorCell[Any], spec: ChildSpec | None = None) -> None:
        self._cell = cell
        # How the child was started, so a restarted supervisor can adopt it.
        self.spec = spec

    def child_failed(self, child: ActorCell[Any], error: BaseException) -> None:
        self._send(ChildFailed(child, error))

    def child_stopped(self, child: ActorCell[Any]) -> None:
        self._send(ChildStopped(child))

    def _send(self, message: ChildFailed | ChildStopped) -> None:
        # A stopped supervisor has nobody left to decide for.
        with contextlib.suppress(ActorError):
            self._cell.enqueue_system((message, None))


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    cell: ActorCell[Any]


class Supervisor(Actor[Any]):
    """
    Supervises children by an OTP strategy.

    Args:
        children: started in order on start.
        strategy: which children restart with one that crashed.
        intensity: restart budget; past it the supervisor escalates.
        backoff: delay before each restart, growing with recent restarts.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._specs = list(children)
        self.strategy = strategy
        self.intensity = intensity or Intensity()
        self.backoff = backoff or Backoff()
        self._window = RestartWindow(self.intensity)
        # Children in start order, by name.
        self._children: dict[str, _Child] = {}
        # Children this supervisor is stopping on purpose.
        self._stopping: set[ActorCell[Any]] = set()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.context.path} {self.strategy.value} "
            f"children={len(self._children)}>"
        )

    # Lifecycle.

    async def on_start(self) -> None:
        for spec in self._specs:
            self.start_child(spec)

    async def on_restart(self, error: BaseException) -> None:
        # The children's cells outlive this instance: adopt them and restart
        # them in place, so their refs and mailboxes stay valid.
        system = self.context.system
        for spec in self._specs:
            path = self.child_path(spec.name)
            if system.find(path) is None:
                self.start_child(spec)
            else:
                self._adopt(spec, system.cell(path), error)
        await self.adopt_dynamic_children(error)

    async def adopt_dynamic_children(self, error: BaseException) -> None:
        """Take over children started at run time, by the spec each was given."""
        for cell in self.context.system.children(self.context.path):
            link = cell.parent
            name = cell.path.rsplit("/", 1)[-1]
            if name in self._children or cell.closed:
                continue
            if isinstance(link, SupervisorLink) and link.spec is not None:
                self._adopt(link.spec, cell, error)

    def _adopt(
        self, spec: ChildSpec, cell: ActorCell[Any], error: BaseException
    ) -> None:
        self._children[spec.name] = _Child(spec, cell)
        cell.restart(0.0, ActorCrashed(f"supervisor restarted: {error!r}"))

    async def on_stop(self) -> None:
        # A restart keeps the children for the next instance to adopt; a
        # supervisor that ends takes them with it, and ends after them.
        if not self.context.shutting_down:
            return
        children = self.context.system.children(self.context.path)
        for cell in children:
            self._stopping.add(cell)
            cell.stop()
        for cell in children:
            await cell.wait_stopped()

    # Children.

    def child_path(self, name: str) -> str:
        return f"{self.context.path.rstrip('/')}/{name}"

    def children(self) -> list[ActorCell[Any]]:
        return [child.cell for child in self._children.values()]

    def start_child(self, spec: ChildSpec) -> ActorRef[Any]:
        """Spawn a child now; the supervisor's own code calls this."""
        if spec.name in self._children:
            raise ActorExists(f"child {spec.name} exists", actor=self.context.path)
        cell = self._spawn(spec)
        self._children[spec.name] = _Child(spec, cell)

        return cell.ref

    def _spawn(self, spec: ChildSpec) -> ActorCell[Any]:
        return self.context.system.spawn(
            spec.factory,
            self.child_path(spec.name),
            parent=SupervisorLink(self._own_cell(), spec),
            capacity=spec.capacity,
        )

    def stop_child(self, name: str) -> ActorCell[Any] | None:
        """Stop a child for good; return its cell to wait on, if it existed."""
        child = self._children.pop(name, None)
        if child is None:
            return None
        self._stopping.add(child.cell)
        child.cell.stop()

        return child.cell

    def _own_cell(self) -> ActorCell[Any]:
        return self.context.system.cell(self.context.path)

    # Messages.

    async def receive(self, message: Any) -> Any:
        if isinstance(message, ChildFailed):
            self._on_child_failed(message.child, message.error)
            return None
        if isinstance(message, ChildStopped):
            self._on_child_stopped(message.child)
            return None
        if isinstance(message, StartChild):
            return self.start_child(message.spec)
        if isinstance(message, StopChild):
            cell = self.stop_child(message.name)
            if cell is not None:
                await cell.wait_stopped()
            return None
        return await self.handle(message)

    async def handle(self, message: Any) -> Any:
        """Handle a message of a subclass's own; the base knows none."""
        raise ActorError(f"{type(self).__name__} got {type(message).__name__}")

    def _find(self, cell: ActorCell[Any]) -> _Child | None:
        child = self._children.get(cell.path.rsplit("/", 1)[-1])
        if child is None or child.cell is not cell:
            return None
        return child

    def _on_child_failed(self, cell: ActorCell[Any], error: BaseException) -> None:
        child = self._find(cell)
        if child is None or not cell.awaiting_decision:
            return

        log.warning(
            "actor_crashed",
            actor=cell.path,
            kind=cell.kind,
            error=repr(error),
            restarts=cell.restarts,
            exc_info=error,
        )
        if child.spec.restart is RestartType.TEMPORARY:
            self.stop_child(child.spec.name)
            return
        if not self.allow_restart(child):
            return

        delay = self.restart_delay(child)
        for sibling in self._restart_set(child):
            cause = (
                error
                if sibling is child
                else ActorCrashed(f"restarted with {cell.path}: {error!r}")
            )
            sibling.cell.restart(delay, cause)

    def restart_delay(self, child: _Child) -> float:
        """Return the wait before restarting ``child``: longer after more restarts."""
        return self.backoff.delay(len(self._window))

    def allow_restart(self, child: _Child) -> bool:
        """Spend one restart from the budget; escalate and refuse when spent."""
        if self._window.record(time.monotonic()):
            return True

        error = RestartIntensityExceeded(
            f"{self.context.path}: more than {self.intensity.max_restarts} "
            f"restarts in {self.intensity.within:g}s, last {child.cell.path}",
            actor=self.context.path,
        )
        log.error("supervisor_escalating", actor=self.context.path, error=str(error))
        self.context.fail(error)

        return False

    def _restart_set(self, child: _Child) -> list[_Child]:
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [child]
        everyone = list(self._children.values())
        if self.strategy is Strategy.ONE_FOR_ALL:
            return everyone
        return everyone[everyone.index(child) :]

    def _on_child_stopped(self, cell: ActorCell[Any]) -> None:
        if cell in self._stopping:
            self._stopping.discard(cell)
            return
        child = self._find(cell)
        if child is None:
            return

        name = child.spec.name
        if (
            child.spec.restart is RestartType.PERMANENT
            and not self.context.shutting_down
            and self.allow_restart(child)
        ):
            log.info("actor_restarting_after_stop", actor=cell.path)
            # Replaced where it stood: rest_for_one goes by start order.
            self._children[name] = _Child(child.spec, self._spawn(child.spec))
        else:
            self._children.pop(name, None)
