"""
How a supervisor reacts to a crash: strategy, restart type, intensity, backoff.

These follow OTP. The strategy says which children restart with the one that
crashed; the restart type says whether a child is restarted at all; the
intensity bounds restarts in a window before the supervisor gives up and
escalates to its own parent; the backoff spaces restarts out.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from livegame.actors.errors import ActorError


class Strategy(StrEnum):
    """Which children restart when one crashes."""

    # Only the crashed child.
    ONE_FOR_ONE = "one_for_one"
    # Every child.
    ONE_FOR_ALL = "one_for_all"
    # The crashed child and every child started after it.
    REST_FOR_ONE = "rest_for_one"


class RestartType(StrEnum):
    """Whether a child comes back after it ends."""

    # Always restarted, even after stopping on its own.
    PERMANENT = "permanent"
    # Restarted after a crash, not after stopping on its own.
    TRANSIENT = "transient"
    # Never restarted.
    TEMPORARY = "temporary"


class RestartIntensityExceeded(ActorError):
    """A supervisor saw more restarts in its window than it allows."""

    code = "restart_intensity_exceeded"


@dataclass(frozen=True, slots=True)
class Intensity:
    """At most ``max_restarts`` restarts within ``within`` seconds."""

    max_restarts: int = 5
    within: float = 10.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delay before a restart, with proportional jitter."""

    initial: float = 0.005
    maximum: float = 2.0
    multiplier: float = 2.0
    # The delay varies by up to this fraction either way.
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the delay before restart number ``attempt`` (from 1)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(attempt - 1, 0))
        spread = base * self.jitter
        draw = (rng or random).uniform(-spread, spread)

        return max(0.0, min(self.maximum, base + draw))


class RestartWindow:
    """Restart times within the intensity window; says when there are too many."""

    __slots__ = ("_intensity", "_times")

    def __init__(self, intensity: Intensity) -> None:
        self._intensity = intensity
        self._times: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._times)

    def record(self, now: float) -> bool:
        """Count a restart at ``now``; return False if the budget is spent."""
        horizon = now - self._intensity.within
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        self._times.append(now)

        return len(self._times) <= self._intensity.max_restarts

    def clear(self) -> None:
        self._times.clear()
