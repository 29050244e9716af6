"""The handle through which everything outside an actor talks to it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from livegame.actors.errors import ActorStopped, AskTimeout

if TYPE_CHECKING:
    from livegame.actors.cell import ActorCell
    from livegame.actors.mailbox import MailboxStatistics

M = TypeVar("M")

DEFAULT_ASK_TIMEOUT = 5.0


def _expire(future: asyncio.Future[Any], path: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(
            AskTimeout(f"no reply from {path} within {timeout:g}s", actor=path)
        )


class ActorRef(Generic[M]):
    """
    A stable address of one actor.

    The ref stays valid across restarts: it points at the cell, which keeps
    the mailbox while instances come and go.
    """

    __slots__ = ("_cell", "path")

    def __init__(self, cell: ActorCell[M]) -> None:
        self._cell = cell
        self.path = cell.path

    def __repr__(self) -> str:
        return f"<ActorRef {self.path}>"

    @property
    def alive(self) -> bool:
        """Whether the actor still accepts messages."""
        return not self._cell.stopped

    def tell(self, message: M) -> None:
        """
        Queue ``message`` and return at once.

        Raises:
            MailboxFull: the mailbox is at capacity; nothing was queued.
            ActorStopped: the actor has stopped.
        """
        # The cell's enqueue, inlined: this is the hottest path of the runtime.
        cell = self._cell
        mailbox = cell.mailbox
        if cell.closed:
            raise ActorStopped(f"{self.path} has stopped", actor=self.path)
        if len(mailbox) >= mailbox.capacity:
            raise cell.refuse()
        mailbox.append((message, None))
        if cell._waiter is not None:
            cell._wake()

    async def ask(self, message: M, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """
        Queue ``message`` and wait for the actor's reply.

        Raises:
            AskTimeout: no reply within ``timeout`` seconds.
            MailboxFull: the mailbox is at capacity; nothing was queued.
            ActorCrashed: the actor crashed handling this message.
            ActorStopped: the actor stopped before it replied.
            LiveGameError: the actor refused the message.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._cell.enqueue((message, future))
        handle = loop.call_later(timeout, _expire, future, self.path, timeout)
        try:
            return await future
        finally:
            handle.cancel()

    def statistics(self) -> MailboxStatistics:
        """Return a snapshot of the mailbox: depth, capacity, rejections."""
        return self._cell.mailbox.statistics()
