"""
A Fischer chess clock counted in integer milliseconds.

The clock never reads the time: every method that needs it takes ``now_ms``
(milliseconds since the Unix epoch), so the rules core stays deterministic and
the game actor decides where time comes from.

Convention (as on lichess): neither side's first move is timed. White's first
move and Black's first move cost nothing and earn no increment; the clock
starts, running for White, when Black completes its first move. From then on,
each completed move charges the mover the time since its clock started, adds
the increment, and starts the opponent's clock.

A flag falls when a running clock reaches zero: at ``now_ms >= deadline_ms()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from livegame.actors.game.events import Color
from livegame.actors.game.messages import ClockView

# Completed moves before the clock starts: one for each side.
_UNTIMED_MOVES = 2


def other(color: Color) -> Color:
    """Return the opponent's color."""
    return "black" if color == "white" else "white"


@dataclass(frozen=True, slots=True)
class Clock:
    """
    Immutable clock state; each change returns a new clock.

    ``white_ms`` and ``black_ms`` are the times left when the running clock
    last started (``since_ms``); the running side's time left at any moment
    is computed from them.
    """

    initial_ms: int
    increment_ms: int
    white_ms: int
    black_ms: int
    # The side whose time runs, or None before the start and after the end.
    running: Color | None = None
    # When the running side's clock started.
    since_ms: int = 0
    # Completed moves, to know when the clock starts.
    presses: int = 0

    @classmethod
    def new(cls, initial_ms: int, increment_ms: int) -> Clock:
        """Return a clock that has not started, both sides at ``initial_ms``."""
        if initial_ms <= 0 or increment_ms < 0:
            raise ValueError("need initial_ms > 0 and increment_ms >= 0")

        return cls(initial_ms, increment_ms, initial_ms, initial_ms)

    def remaining(self, color: Color, now_ms: int) -> int:
        """Return the time ``color`` has left at ``now_ms``, never below zero."""
        base = self.white_ms if color == "white" else self.black_ms
        if self.running != color:
            return base

        return max(0, base - max(0, now_ms - self.since_ms))

    def deadline_ms(self) -> int | None:
        """Return when the running side's flag falls, or None if none runs."""
        if self.running is None:
            return None

        base = self.white_ms if self.running == "white" else self.black_ms

        return self.since_ms + base

    def flagged(self, now_ms: int) -> Color | None:
        """Return the side whose flag has fallen at ``now_ms``, if any."""
        deadline = self.deadline_ms()
        if deadline is None or now_ms < deadline:
            return None

        return self.running

    def press(self, mover: Color, now_ms: int) -> Clock:
        """
        Return the clock after ``mover`` completes a move at ``now_ms``.

        The caller checks :meth:`flagged` first: a move after the flag fell
        is not a move.
        """
        if self.running is None:
            # One of the untimed first moves: nothing charged, nothing earned.
            return self.pressed(mover, now_ms, self.white_ms, self.black_ms)

        left = self.remaining(mover, now_ms) + self.increment_ms
        if mover == "white":
            return self.pressed(mover, now_ms, left, self.black_ms)

        return self.pressed(mover, now_ms, self.white_ms, left)

    def pressed(self, mover: Color, now_ms: int, white_ms: int, black_ms: int) -> Clock:
        """
        Return the clock after a move by ``mover`` that left these times.

        :meth:`press` computes the times; replaying a journal passes the
        recorded ones, so a rebuilt clock matches the live one exactly.
        """
        presses = self.presses + 1
        started = self.running is not None or presses >= _UNTIMED_MOVES
        running = other(mover) if started else None

        return Clock(
            self.initial_ms,
            self.increment_ms,
            white_ms,
            black_ms,
            running,
            now_ms,
            presses,
        )

    def stop(self, now_ms: int) -> Clock:
        """Return the clock stopped at ``now_ms``, the running side charged."""
        return self.stopped(
            now_ms, self.remaining("white", now_ms), self.remaining("black", now_ms)
        )

    def stopped(self, now_ms: int, white_ms: int, black_ms: int) -> Clock:
        """Return the clock stopped at ``now_ms`` with these times left."""
        return Clock(
            self.initial_ms,
            self.increment_ms,
            white_ms,
            black_ms,
            None,
            now_ms,
            self.presses,
        )

    def view(self, now_ms: int) -> ClockView:
        """Return the times left at ``now_ms``, for replies and watchers."""
        return ClockView(
            white_ms=self.remaining("white", now_ms),
            black_ms=self.remaining("black", now_ms),
            increment_ms=self.increment_ms,
            running=self.running,
        )
