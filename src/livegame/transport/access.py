"""
Who may do what to a game.

Only a game's players act in it; a user creates only games they play in,
unless they hold the ``service`` role; admin routes need ``admin``. Whose
turn it is stays the game actor's rule (409 not_your_turn).
"""

from __future__ import annotations

from collections import OrderedDict

from livegame.actors.game.messages import GameView, GetGame
from livegame.transport.auth import Principal
from livegame.transport.errors import AdminOnly, NotAPlayer
from livegame.transport.service import GameService, ask_for


def check_can_create(principal: Principal, white: str, black: str) -> None:
    if principal.is_service or principal.user_id in (white, black):
        return

    raise NotAPlayer("you may only create games in which you play white or black")


def check_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise AdminOnly("this route needs the admin role")


class Players:
    """The players of recently seen games; players never change, so no expiry."""

    def __init__(self, service: GameService, *, capacity: int, timeout: float) -> None:
        self._service = service
        self._capacity = capacity
        self._timeout = timeout
        # game id -> (white, black), least recently used first.
        self._known: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<Players games={len(self._known)}/{self._capacity}>"

    def remember(self, view: GameView) -> None:
        self._known[view.id] = (view.white, view.black)
        self._known.move_to_end(view.id)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)

    async def of(self, game_id: str) -> tuple[str, str]:
        """Return (white, black); raises GameNotFound for an unknown game."""
        players = self._known.get(game_id)
        if players is not None:
            self._known.move_to_end(game_id)
            return players

        view = await ask_for(self._service, game_id, GetGame(), GameView, self._timeout)
        self.remember(view)

        return view.white, view.black

    async def check_player(self, game_id: str, principal: Principal) -> None:
        """Raise NotAPlayer unless ``principal`` plays in the game."""
        if principal.user_id not in await self.of(game_id):
            raise NotAPlayer(f"you do not play in game {game_id}")
