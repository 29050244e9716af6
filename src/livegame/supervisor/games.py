"""
The games supervisor: one game actor per live game, started on demand.

Game actors are activated when a request for their game arrives and
passivated when they have been idle for a while; their state can always be
rebuilt from the journal. Each game has its own restart budget, so a game
that keeps crashing is stopped on its own instead of taking every other game
down with an escalation; a supervisor-wide budget still escalates when many
games fail at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from livegame.actors.actor import Actor
from livegame.actors.cell import ActorCell
from livegame.actors.errors import AskTimeout
from livegame.actors.ref import ActorRef
from livegame.actors.system import ActorSystem
from livegame.errors import BadRequest, GameNotFound
from livegame.supervisor.policy import (
    Backoff,
    Intensity,
    RestartType,
    RestartWindow,
)
from livegame.supervisor.supervisor import ChildSpec, Supervisor, _Child

log = structlog.get_logger("livegame.supervisor")

GAME_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

GamesPath = "/user/games"


def check_game_id(game_id: str) -> str:
    """Return ``game_id`` if it can name an actor, else raise BadRequest."""
    if not GAME_ID.match(game_id):
        raise BadRequest(
            "a game id is 1-64 letters, digits, '-' or '_'", game_id=game_id[:80]
        )
    return game_id


@dataclass(frozen=True, slots=True)
class Activate:  # -> ActorCell
    game_id: str


@dataclass(frozen=True, slots=True)
class _Sweep:
    pass


class GamesSupervisor(Supervisor):
    """
    Supervises game actors made by ``game_factory(game_id)``.

    Args:
        game_factory: makes the actor of one game.
        passivate_after: seconds of idleness before a passivatable game stops.
        ended_passivate_after: the same for a game that has ended (its actor
            says ``ended``), which nothing but reads can change: sooner, so
            finished games do not fill the node's memory.
        game_intensity: restart budget of one game; past it the game stops.
        mailbox_capacity: of each game's mailbox.
    """

    def __init__(
        self,
        game_factory: Callable[[str], Actor[Any]],
        *,
        passivate_after: float = 300.0,
        ended_passivate_after: float = 30.0,
        game_intensity: Intensity | None = None,
        intensity: Intensity | None = None,
        backoff: Backoff | None = None,
        mailbox_capacity: int = 256,
    ) -> None:
        super().__init__(
            intensity=intensity or Intensity(max_restarts=1000, within=10.0),
            backoff=backoff,
        )
        self._game_factory = game_factory
        self.passivate_after = passivate_after
        self.ended_passivate_after = min(ended_passivate_after, passivate_after)
        self.game_intensity = game_intensity or Intensity(max_restarts=10, within=60.0)
        self.mailbox_capacity = mailbox_capacity
        self._game_windows: dict[str, RestartWindow] = {}

    async def on_start(self) -> None:
        await super().on_start()
        self._start_sweeping()

    async def on_restart(self, error: BaseException) -> None:
        await super().on_restart(error)
        # A restart cancelled the old instance's timers.
        self._start_sweeping()

    def _start_sweeping(self) -> None:
        interval = max(self.ended_passivate_after / 4, 0.05)
        self.context.timers.start_periodic("sweep", interval, _Sweep())

    async def adopt_dynamic_children(self, error: BaseException) -> None:
        prefix = self.context.path + "/"
        for cell in self.context.system.cells():
            if cell.path.startswith(prefix) and "/" not in cell.path[len(prefix) :]:
                game_id = cell.path[len(prefix) :]
                self._children[game_id] = _Child(self._spec(game_id), cell)
                cell.restart(0.0, error)

    def _spec(self, game_id: str) -> ChildSpec:
        return ChildSpec(
            game_id,
            lambda: self._game_factory(game_id),
            restart=RestartType.TRANSIENT,
            capacity=self.mailbox_capacity,
        )

    async def handle(self, message: Any) -> Any:
        if isinstance(message, Activate):
            return await self._activate(message.game_id)
        if isinstance(message, _Sweep):
            self._passivate_idle()
            return None
        return await super().handle(message)

    async def _activate(self, game_id: str) -> ActorCell[Any]:
        child = self._children.get(game_id)
        if child is not None and not child.cell.closed:
            return child.cell

        # A passivating incarnation must be gone before the next one loads.
        cell = self.context.system._cells.get(self.child_path(game_id))
        if cell is not None:
            await cell.wait_stopped()
        self._children.pop(game_id, None)
        self.start_child(self._spec(game_id))

        return self._children[game_id].cell

    def allow_restart(self, child: _Child) -> bool:
        game_id = child.spec.name
        window = self._game_windows.setdefault(
            game_id, RestartWindow(self.game_intensity)
        )
        if not window.record(time.monotonic()):
            log.error(
                "game_restart_budget_spent",
                game_id=game_id,
                max_restarts=self.game_intensity.max_restarts,
                within=self.game_intensity.within,
            )
            self.stop_child(game_id)
            return False

        return super().allow_restart(child)

    def restart_delay(self, child: _Child) -> float:
        # A game's own crashes slow its restarts; another game's do not.
        window = self._game_windows.get(child.spec.name)
        return self.backoff.delay(len(window) if window is not None else 1)

    def _passivate_idle(self) -> None:
        now = time.monotonic()
        horizon = now - self.passivate_after
        ended_horizon = now - self.ended_passivate_after
        for game_id, child in list(self._children.items()):
            cell = child.cell
            if not cell.idle or cell.last_active > ended_horizon:
                continue
            ended = bool(getattr(cell.instance, "ended", False))
            if (ended or cell.last_active <= horizon) and _passivatable(cell):
                log.debug("game_passivated", game_id=game_id)
                self.stop_child(game_id)
                self._game_windows.pop(game_id, None)


def _passivatable(cell: ActorCell[Any]) -> bool:
    return bool(getattr(cell.instance, "passivatable", True))


class Games:
    """
    Finds or activates the local actor of a game.

    The fast path is a dictionary look-up; only a game with no live actor
    goes through the supervisor's mailbox.
    """

    def __init__(self, system: ActorSystem, path: str = GamesPath) -> None:
        self._system = system
        self._path = path

    def __repr__(self) -> str:
        return f"<Games {self._path}>"

    def local(self, game_id: str) -> ActorRef[Any] | None:
        """Return the running actor of a game, or None."""
        ref = self._system.find(f"{self._path}/{game_id}")
        if ref is None or not ref.alive:
            return None
        return ref

    async def activate(self, game_id: str, timeout: float = 5.0) -> ActorRef[Any]:
        """
        Return the actor of a game, starting it if needed.

        Raises:
            GameNotFound: the journal has no such game.
            BadRequest: the id cannot name a game.
            AskTimeout: the game did not start within ``timeout`` seconds.
        """
        ref = self.local(game_id)
        if ref is not None:
            return ref

        check_game_id(game_id)
        deadline = anyio.current_time() + timeout
        supervisor = self._system.ref(self._path)
        cell: ActorCell[Any] = await supervisor.ask(Activate(game_id), timeout)
        # A game that crashes while loading waits out its restart backoff;
        # the caller waits no longer than it asked to.
        with anyio.move_on_after(deadline - anyio.current_time()) as waiting:
            await cell.wait_started()
        if waiting.cancelled_caught:
            raise AskTimeout(
                f"game {game_id} did not start within {timeout:g}s", game_id=game_id
            )
        if cell.refusal is not None:
            raise cell.refusal
        if cell.closed:
            raise GameNotFound(f"game {game_id} is not available", game_id=game_id)

        return cell.ref

    def active(self) -> int:
        """Return how many game actors run on this node."""
        return len(self._system.children(self._path))
