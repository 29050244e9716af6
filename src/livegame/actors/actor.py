"""The actor base class and the context the runtime gives each instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from livegame.actors.cell import ActorCell
    from livegame.actors.ref import ActorRef
    from livegame.actors.system import ActorSystem
    from livegame.actors.timers import Timers

M = TypeVar("M")


class ActorContext(Generic[M]):
    """What an actor instance may know about its place in the system."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell[M]) -> None:
        self._cell = cell

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def self_ref(self) -> ActorRef[M]:
        return self._cell.ref

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def timers(self) -> Timers[M]:
        return self._cell.timers

    @property
    def restarts(self) -> int:
        return self._cell.restarts

    @property
    def shutting_down(self) -> bool:
        """Whether the actor is stopping: a supervisor then restarts nothing."""
        return self._cell.stopped or self._cell.system.shutting_down

    def fail(self, error: BaseException) -> None:
        """Crash after the current message, so the supervisor handles ``error``."""
        self._cell.fail(error)

    def stop_self(self) -> None:
        """Stop after the current message; queued asks get ActorStopped."""
        self._cell.stop()


class Actor(Generic[M]):
    """
    Handles one message at a time from its cell's mailbox.

    Subclasses implement :meth:`receive`. Its return value is the reply to an
    ask. Raising a :class:`livegame.errors.LiveGameError` refuses the message:
    the asker gets the error and the actor carries on. Any other exception is
    a crash: the asker gets :class:`~livegame.actors.errors.ActorCrashed` and
    the supervisor decides what happens next. A restart makes a new instance
    from the same factory; the mailbox and the ref stay.
    """

    # Set by the runtime before on_start runs.
    context: ActorContext[M]

    def __repr__(self) -> str:
        path = getattr(getattr(self, "context", None), "path", "?")
        return f"<{type(self).__name__} {path}>"

    async def on_start(self) -> None:
        """Run before the first message of a new cell."""

    async def on_stop(self) -> None:
        """Run when the instance is stopped or replaced by a restart."""

    async def on_restart(self, error: BaseException) -> None:
        """Run on the new instance after a crash, instead of on_start."""
        await self.on_start()

    async def receive(self, message: M) -> Any:
        """Handle one message and return the reply to an ask."""
        raise NotImplementedError
