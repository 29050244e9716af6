"""
The lease keeper: keeps this node's lease alive and adopts dead nodes' games.

Every tick it renews the node's lease in the directory. It also looks for
nodes that hold games but no lease any more (they died) and adopts their
games here, so that their clocks run on and their flags fall even when no
player sends anything; the directory's atomic claim makes sure each game goes
to one survivor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from livegame.actors.actor import Actor
from livegame.errors import LiveGameError

log = structlog.get_logger("livegame.supervisor.lease")


class LeaseDirectory(Protocol):
    node_id: str

    async def renew_lease(self) -> None: ...

    async def dead_nodes(self) -> list[str]: ...

    async def games_of(self, node_id: str) -> list[str]: ...

    async def forget_node(self, node_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Tick:
    pass


class LeaseKeeper(Actor[Tick]):
    """
    Renews the lease every ``interval`` seconds and adopts orphaned games.

    Args:
        directory: the cluster directory.
        interval: seconds between renewals; a third of the lease's TTL.
        adopt: activates one game on this node (claiming it first).
        on_tick: run after each renewal (e.g. renewing remote watches).
    """

    def __init__(
        self,
        directory: LeaseDirectory,
        interval: float,
        adopt: Callable[[str], Awaitable[object]],
        on_tick: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._directory = directory
        self._interval = interval
        self._adopt = adopt
        self._on_tick = on_tick
        # Whether this incarnation has taken back its predecessor's games.
        self._adopted_own = False
        # Whether the last renewal failed, to log each outage once.
        self._failing = False

    async def on_start(self) -> None:
        await self._renew()
        self.context.timers.start_periodic("tick", self._interval, Tick())
        # A node restarted under its id holds the lease its predecessor held,
        # so it is not dead to anyone: take that predecessor's games back at
        # the first tick (the games supervisor is up by then), before a
        # client has to ask for them, so their clocks run.
        self.context.self_ref.tell(Tick())

    async def receive(self, message: Tick) -> None:
        await self._renew()
        if not self._failing:
            if not self._adopted_own:
                await self._adopt_own()
            await self._adopt_orphans()
        if self._on_tick is not None:
            await self._on_tick()

    async def _renew(self) -> None:
        try:
            await self._directory.renew_lease()
        except LiveGameError as error:
            if not self._failing:
                log.warning("lease_renewal_failed", error=str(error))
            self._failing = True
            return

        if self._failing:
            log.info("lease_renewed_again")
        self._failing = False

    async def _adopt_orphans(self) -> None:
        try:
            dead = await self._directory.dead_nodes()
            for node_id in dead:
                games = await self._directory.games_of(node_id)
                log.warning(
                    "adopting_games_of_dead_node", node=node_id, games=len(games)
                )
                for game_id in games:
                    await self._adopt_one(game_id)
                await self._directory.forget_node(node_id)
        except LiveGameError as error:
            log.warning("orphan_adoption_failed", error=str(error))

    async def _adopt_own(self) -> None:
        try:
            games = await self._directory.games_of(self._directory.node_id)
        except LiveGameError as error:
            log.warning("own_games_unavailable", error=str(error))
            return
        if games:
            log.info("adopting_games_of_predecessor", games=len(games))
        for game_id in games:
            await self._adopt_one(game_id)
        self._adopted_own = True

    async def _adopt_one(self, game_id: str) -> None:
        try:
            await self._adopt(game_id)
        except LiveGameError as error:
            # Another survivor may have won it, or it is gone: both are fine.
            log.debug("game_not_adopted", game_id=game_id, error=error.code)
