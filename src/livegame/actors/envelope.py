"""A message on its way to an actor, with where its reply goes."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

M = TypeVar("M")

Reply = asyncio.Future[Any]


class Envelope(Generic[M]):
    """One message plus the future that receives its reply (None for a tell)."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: M, reply_to: Reply | None = None) -> None:
        self.message = message
        self.reply_to = reply_to

    def __repr__(self) -> str:
        kind = "tell" if self.reply_to is None else "ask"
        return f"<Envelope {kind} {type(self.message).__name__}>"

    def reply(self, result: object) -> None:
        """Resolve the asker's future; a no-op for tells and expired asks."""
        future = self.reply_to
        if future is not None and not future.done():
            future.set_result(result)

    def fail(self, error: BaseException) -> None:
        """Raise ``error`` at the asker; a no-op for tells and expired asks."""
        future = self.reply_to
        if future is not None and not future.done():
            future.set_exception(error)
