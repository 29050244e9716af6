"""
A message on its way to an actor, with where its reply goes.

An envelope is a plain ``(message, reply_to)`` tuple: ``reply_to`` is the
asker's future, or None for a tell. Tuples keep the tell path cheap; the
helpers here resolve the future once and only once.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

Reply: TypeAlias = "asyncio.Future[Any]"
Envelope: TypeAlias = "tuple[Any, asyncio.Future[Any] | None]"


def reply(envelope: Envelope, result: object) -> None:
    """Resolve the asker's future; a no-op for tells and expired asks."""
    future = envelope[1]
    if future is not None and not future.done():
        future.set_result(result)


def fail(envelope: Envelope, error: BaseException) -> None:
    """Raise ``error`` at the asker; a no-op for tells and expired asks."""
    future = envelope[1]
    if future is not None and not future.done():
        future.set_exception(error)
