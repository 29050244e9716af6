"""The top of a node's tree: the root supervisor and what happens when it gives up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from livegame.actors.cell import ActorCell
from livegame.actors.ref import ActorRef
from livegame.actors.system import ActorSystem
from livegame.supervisor.supervisor import Supervisor

log = structlog.get_logger("livegame.supervisor")


class NodeGuardian:
    """The root supervisor's parent: when the root fails, the node stops."""

    __slots__ = ("_system",)

    def __init__(self, system: ActorSystem) -> None:
        self._system = system

    def child_failed(self, child: ActorCell[Any], error: BaseException) -> None:
        log.error("root_supervisor_failed", actor=child.path, error=repr(error))
        self._system.fail(error)

    def child_stopped(self, child: ActorCell[Any]) -> None:
        pass


async def spawn_root(
    system: ActorSystem, factory: Callable[[], Supervisor], path: str = "/"
) -> ActorRef[Any]:
    """Start the root supervisor of ``system`` at ``path`` and wait for its tree."""
    cell = system.spawn(factory, path, parent=NodeGuardian(system))
    # Supervisors spawn their children while starting: wait until no new
    # cell appears, so the whole tree is up when this returns.
    seen: set[str] = set()
    while len(seen) < len(system):
        for child in system.cells():
            if child.path not in seen:
                seen.add(child.path)
                await child.wait_started()

    return cell.ref
