"""
Placement: which node serves a game, and under which owner epoch.

A node serves a game only after it has won it in the directory (Redis: the
game maps to ``(node, epoch)``, claimable when unowned or when the owner's
lease has expired) and has written that epoch to the journal's store
(PostgreSQL), where every append checks it. The directory routes; the epoch
in PostgreSQL fences. So if the directory forgets (Redis restarted) or is
unreachable, a node may still claim a game in PostgreSQL alone: the worst
that follows is that two nodes take the game from each other, never that
both commit a move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from livegame.errors import Fenced, LiveGameError, StorageError

log = structlog.get_logger("livegame.supervisor.placement")


@dataclass(frozen=True, slots=True)
class Owned:
    """This node serves the game under ``epoch``."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """Another live node serves the game."""

    node_id: str
    epoch: int


class Directory(Protocol):
    """The cluster's game-to-node map (Redis)."""

    async def claim(self, game_id: str) -> tuple[str, int]:
        """Claim the game for this node if free; return its (owner, epoch)."""
        ...

    async def raise_epoch(self, game_id: str, at_least: int) -> int:
        """Make this node's claim's epoch at least ``at_least``; return it."""
        ...

    async def release(self, game_id: str) -> None:
        """Give up this node's claim on the game, if it holds it."""
        ...


class EpochStore(Protocol):
    """Where appends are fenced (PostgreSQL)."""

    async def claim(self, game_id: str, epoch: int) -> None:
        """Make ``epoch`` the owner epoch; raise Fenced if it is stale."""
        ...

    async def current_epoch(self, game_id: str) -> int:
        """Return the game's owner epoch; raise GameNotFound if unknown."""
        ...


class Placement:
    """Decides, per game, whether this node serves it and under which epoch."""

    def __init__(self, node_id: str, directory: Directory, store: EpochStore) -> None:
        self.node_id = node_id
        self._directory = directory
        self._store = store

    def __repr__(self) -> str:
        return f"<Placement node={self.node_id}>"

    async def place(self, game_id: str) -> Owned | Elsewhere:
        """
        Claim ``game_id`` for this node, or say who serves it.

        Raises:
            GameNotFound: the game does not exist (nothing stays claimed).
            StorageError: PostgreSQL is unreachable.
        """
        try:
            owner, epoch = await self._directory.claim(game_id)
        except StorageError as error:
            log.warning("directory_unavailable", game_id=game_id, error=str(error))
            return await self._claim_in_store(game_id)

        if owner != self.node_id:
            return Elsewhere(owner, epoch)
        try:
            return await self._fence(game_id, epoch)
        except LiveGameError:
            await self._release_quietly(game_id)
            raise

    async def _fence(self, game_id: str, epoch: int) -> Owned:
        try:
            await self._store.claim(game_id, epoch)
        except Fenced as stale:
            # The directory forgot a newer epoch (Redis lost its data):
            # claim above what PostgreSQL holds.
            above = int(str(stale.context.get("owner_epoch", epoch))) + 1
            epoch = await self._directory.raise_epoch(game_id, above)
            await self._store.claim(game_id, epoch)

        return Owned(epoch)

    async def _claim_in_store(self, game_id: str) -> Owned:
        epoch = await self._store.current_epoch(game_id) + 1
        await self._store.claim(game_id, epoch)

        return Owned(epoch)

    async def _release_quietly(self, game_id: str) -> None:
        try:
            await self._directory.release(game_id)
        except StorageError as error:
            log.warning("directory_release_failed", game_id=game_id, error=str(error))
