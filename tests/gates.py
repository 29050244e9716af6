"""Gates: where a test parks an actor inside a message until it lets it go."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import ClassVar

import anyio


class Gate:
    """Where a Hold message parks an actor until the test opens it."""

    # Every gate made, so a failed test can open them all instead of hanging
    # on an actor still parked when the system stops.
    made: ClassVar[weakref.WeakSet[Gate]] = weakref.WeakSet()

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.opened = anyio.Event()
        Gate.made.add(self)

    def open(self) -> None:
        self.opened.set()

    @classmethod
    def open_all(cls) -> None:
        for gate in list(cls.made):
            gate.open()


@dataclass(frozen=True)
class Hold:
    """Park inside receive until the gate opens, then reply "released"."""

    gate: Gate = field(default_factory=Gate)
