"""Messages an actor sends itself later, once or periodically."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from livegame.errors import LiveGameError

if TYPE_CHECKING:
    from livegame.actors.cell import ActorCell

M = TypeVar("M")

log = structlog.get_logger("livegame.actors.timers")


class Timers(Generic[M]):
    """
    Keyed timers of one actor cell.

    Starting a timer under a key that is in use replaces it. All timers are
    cancelled when the actor stops or restarts, so a new incarnation arms its
    own in ``on_start`` / ``on_restart``.
    """

    __slots__ = ("_cell", "_handles")

    def __init__(self, cell: ActorCell[M]) -> None:
        self._cell = cell
        self._handles: dict[object, asyncio.TimerHandle] = {}

    def __repr__(self) -> str:
        return f"<Timers {self._cell.path} active={len(self._handles)}>"

    def __contains__(self, key: object) -> bool:
        return key in self._handles

    def start_once(self, key: object, delay: float, message: M) -> None:
        """Tell ``message`` to the actor after ``delay`` seconds."""
        self.cancel(key)
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(
            max(delay, 0.0), self._fire, key, message, None
        )

    def start_periodic(self, key: object, interval: float, message: M) -> None:
        """Tell ``message`` to the actor every ``interval`` seconds."""
        if interval <= 0:
            raise ValueError(f"timer interval must be positive, got {interval}")
        self.cancel(key)
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(
            interval, self._fire, key, message, interval
        )

    def cancel(self, key: object) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def _fire(self, key: object, message: M, interval: float | None) -> None:
        if interval is None:
            del self._handles[key]
        else:
            loop = asyncio.get_running_loop()
            self._handles[key] = loop.call_later(
                interval, self._fire, key, message, interval
            )

        try:
            self._cell.ref.tell(message)
        except LiveGameError as exc:
            # A full mailbox or a stopping actor: the tick is lost, say so.
            log.warning(
                "timer_message_dropped",
                actor=self._cell.path,
                timer=str(key),
                reason=exc.code,
            )
