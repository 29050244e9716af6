"""A bounded first-in first-out queue of envelopes, owned by one actor cell."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TypeVar

from livegame.actors.errors import MailboxFull

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    depth: int
    capacity: int
    # Messages refused because the mailbox was full, since it was made.
    rejected: int


class Mailbox(deque[T]):
    """
    A bounded queue that never blocks its writer.

    A full mailbox refuses the item with :class:`MailboxFull`: overload is an
    outcome the sender sees, never a silent drop. The mailbox belongs to the
    cell, not to the actor instance, so it survives restarts. It is a deque
    so that the hot paths (append, popleft, len) run in C; the bound is
    checked by :meth:`put_nowait` and by the ref's tell, never by ``append``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be positive, got {capacity}")
        super().__init__()
        # Most items the mailbox holds at once.
        self.capacity = capacity
        # Items refused for lack of room.
        self.rejected = 0

    def __repr__(self) -> str:
        return f"<Mailbox {len(self)}/{self.capacity}>"

    def refuse(self) -> MailboxFull:
        """Count a refused item and return the error to raise."""
        self.rejected += 1
        return MailboxFull(
            f"mailbox full ({self.capacity} messages)", capacity=self.capacity
        )

    def put_nowait(self, item: T) -> None:
        """Append ``item``, or raise :class:`MailboxFull` without changing anything."""
        if len(self) >= self.capacity:
            raise self.refuse()
        self.append(item)

    def put_system(self, item: T) -> None:
        """Append ``item`` past the bound: for the runtime's own signals only."""
        self.append(item)

    def get_nowait(self) -> T:
        """Remove and return the oldest item; raise IndexError when empty."""
        return self.popleft()

    def drain(self) -> list[T]:
        """Remove and return every item, oldest first."""
        items = list(self)
        self.clear()
        return items

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(len(self), self.capacity, self.rejected)
