"""
The actor system: the registry of live actors by path, and the tasks they run in.

Every actor has a path such as ``/user/games/g42``; the system spawns cells
under a parent, finds them by path, kills them (chaos), and snapshots the
live tree as plain data for the admin endpoint. Supervision policy lives in
:mod:`livegame.supervisor`; the system only runs what it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc
import structlog

from livegame.actors.actor import Actor
from livegame.actors.cell import ActorCell, Parent
from livegame.actors.errors import ActorError, ActorExists, ActorNotFound
from livegame.actors.ref import ActorRef

M = TypeVar("M")

log = structlog.get_logger("livegame.actors")

DEFAULT_CAPACITY = 1024


class NodeStopped(ActorError):
    """The root supervisor gave up: the node stops and its orchestrator restarts it."""

    code = "node_stopped"


@dataclass(frozen=True, slots=True)
class FailureInfo:
    type: str
    message: str
    at: str


@dataclass(frozen=True, slots=True)
class ActorSnapshot:
    """One actor as the introspection shows it, with its children."""

    path: str
    kind: str
    status: str
    mailbox_depth: int
    mailbox_capacity: int
    processed: int
    restarts: int
    last_failure: FailureInfo | None
    uptime_s: float
    children: tuple[ActorSnapshot, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parent_path(path: str) -> str:
    """Return the path one level up: ``/user/games/g1`` -> ``/user/games``."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _snapshot_one(cell: ActorCell[Any], now: float) -> ActorSnapshot:
    failure = cell.last_failure
    info = None
    if failure is not None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(failure.at))
        info = FailureInfo(failure.type, failure.message, at)

    return ActorSnapshot(
        path=cell.path,
        kind=cell.kind,
        status=cell.status.value,
        mailbox_depth=len(cell.mailbox),
        mailbox_capacity=cell.mailbox.capacity,
        processed=cell.processed,
        restarts=cell.restarts,
        last_failure=info,
        uptime_s=round(now - cell.started_at, 3),
    )


class ActorSystem:
    """
    Runs actor cells in one task group.

    Use as an async context manager; leaving it stops every actor, deepest
    first. If the root gives up (:meth:`fail`), leaving it raises
    :class:`NodeStopped`.
    """

    def __init__(self, name: str = "node") -> None:
        self.name = name
        self._cells: dict[str, ActorCell[Any]] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._failure: BaseException | None = None
        self._failed = anyio.Event()
        # Set once the whole system is stopping, so nothing is restarted.
        self.shutting_down = False

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name} actors={len(self._cells)}>"

    async def __aenter__(self) -> ActorSystem:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        try:
            await self.stop_all()
        except anyio.get_cancelled_exc_class():
            # fail() cancelled the task group, and this wait with it; the
            # cancelled cells finish on their own, and NodeStopped says why.
            if self._failure is None:
                raise
        finally:
            suppressed = await self._task_group.__aexit__(exc_type, exc, tb)
            self._task_group = None
        if self._failure is not None:
            raise NodeStopped(
                f"node stopped: {self._failure!r}", node=self.name
            ) from self._failure
        return suppressed

    # Spawning and finding.

    def spawn(
        self,
        factory: Callable[[], Actor[M]],
        path: str,
        *,
        parent: Parent,
        capacity: int = DEFAULT_CAPACITY,
    ) -> ActorCell[M]:
        """Start a cell at ``path``; it runs ``on_start`` before its first message."""
        if self._task_group is None:
            raise ActorError("the actor system is not running", actor=path)
        if not path.startswith("/") or (path != "/" and path.endswith("/")):
            raise ValueError(f"actor path must be absolute, got {path!r}")
        if path in self._cells:
            raise ActorExists(f"an actor already runs at {path}", actor=path)

        cell = ActorCell(self, path, factory, parent, capacity)
        self._cells[path] = cell
        self._task_group.start_soon(cell.run, name=f"actor {path}")

        return cell

    def find(self, path: str) -> ActorRef[Any] | None:
        cell = self._cells.get(path)
        return None if cell is None else cell.ref

    def cell(self, path: str) -> ActorCell[Any]:
        """Return the cell at ``path``; raise ActorNotFound if none runs there."""
        try:
            return self._cells[path]
        except KeyError:
            raise ActorNotFound(f"no actor at {path}", actor=path) from None

    def ref(self, path: str) -> ActorRef[Any]:
        return self.cell(path).ref

    def children(self, path: str) -> list[ActorCell[Any]]:
        """Return the cells one level below ``path``, in spawn order."""
        return [
            cell
            for p, cell in self._cells.items()
            if p != path and parent_path(p) == path
        ]

    def __len__(self) -> int:
        return len(self._cells)

    def cells(self) -> list[ActorCell[Any]]:
        return list(self._cells.values())

    def _unregister(self, cell: ActorCell[Any]) -> None:
        if self._cells.get(cell.path) is cell:
            del self._cells[cell.path]

    # Chaos and lifecycle.

    def kill(self, path: str, reason: str = "killed by path") -> None:
        """Make the actor at ``path`` fail as if it had crashed."""
        log.warning("actor_kill_requested", actor=path, reason=reason)
        self.cell(path).kill(reason)

    async def stop(self, path: str) -> None:
        """Stop the actor at ``path`` and everything below it, deepest first."""
        prefix = path.rstrip("/") + "/"
        doomed = [
            c for p, c in self._cells.items() if p == path or p.startswith(prefix)
        ]
        # Every cell is marked stopping at once, so no supervisor in the
        # subtree restarts a child that is going away.
        for cell in doomed:
            cell.stop()
        for cell in sorted(doomed, key=lambda c: c.path.count("/"), reverse=True):
            await cell.wait_stopped()

    async def stop_all(self) -> None:
        self.shutting_down = True
        await self.stop("/")

    def fail(self, error: BaseException) -> None:
        """Stop the whole node because the root supervisor gave up."""
        if self._failure is None:
            self._failure = error
            self._failed.set()
            log.error("node_stopping", node=self.name, error=repr(error))
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def wait_failed(self) -> BaseException:
        """Wait until the root gives up; return why."""
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    # Introspection.

    def snapshot(self, path: str = "/") -> ActorSnapshot:
        """Return the live tree under ``path`` as plain data."""
        now = time.monotonic()
        nodes = {p: _snapshot_one(c, now) for p, c in self._cells.items()}
        # Children of each path, in spawn order (dicts as ordered sets). A
        # path with no actor of its own is linked to its parent too, or the
        # subtree below it would be missing from the tree.
        children: dict[str, dict[str, None]] = {}
        for p in nodes:
            while p != "/":
                siblings = children.setdefault(parent_path(p), {})
                if p in siblings:
                    break
                siblings[p] = None
                p = parent_path(p)

        def build(p: str) -> ActorSnapshot:
            kids = tuple(build(k) for k in children.get(p, ()))
            node = nodes.get(p)
            if node is None:
                # A path with no actor of its own, shown so the tree is whole.
                node = ActorSnapshot(p, "path", "-", 0, 0, 0, 0, None, 0.0)
            return ActorSnapshot(**{**_fields(node), "children": kids})

        if path not in nodes and path not in children:
            raise ActorNotFound(f"no actor at {path}", actor=path)
        return build(path)


def _fields(snapshot: ActorSnapshot) -> dict[str, Any]:
    return {name: getattr(snapshot, name) for name in snapshot.__dataclass_fields__}
