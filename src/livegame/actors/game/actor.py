"""
The game actor: one live game, driven through its mailbox.

The actor runs the rules core (:mod:`livegame.actors.game.rules`) and owns
nothing else a restart could lose. A command becomes events; the events go to
the journal; only once the journal holds them are they applied to the state,
answered and delivered to the game's watchers, in seq order. A flag timer
armed at the clock's deadline ends the game by timeout when nobody moves.

:class:`GameActors` makes the actors for a games supervisor and keeps each
game's :class:`~livegame.actors.game.watchers.Watchers` outside its actor, so
the subscribers of a game whose actor crashed are served by the next
incarnation without a gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog

from livegame.actors.actor import Actor
from livegame.actors.game.events import GameEnded, GameEvent
from livegame.actors.game.journal import Journal
from livegame.actors.game.messages import (
    Abort,
    AcceptDraw,
    ClaimDraw,
    DeclineDraw,
    GameAction,
    GameMessage,
    GameView,
    GetGame,
    GetMoves,
    MoveResult,
    OfferDraw,
    PlayMove,
    Resign,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from livegame.actors.game.rules import GameState
from livegame.actors.game.watchers import Watchers
from livegame.errors import BadRequest, Fenced, GameNotFound, LiveGameError
from livegame.telemetry.metrics import count_game_end
from livegame.telemetry.tracing import span

log = structlog.get_logger("livegame.actors.game")

_FLAG_TIMER: Final = "flag"
# Arm the flag timer this much late, so it never fires before the deadline.
_FLAG_MARGIN_MS: Final = 1

_Action = Callable[[GameState, str, int], tuple[GameEvent, ...]]
_ACTIONS: Final[dict[type[GameAction], _Action]] = {
    Resign: GameState.resign,
    OfferDraw: GameState.offer_draw,
    AcceptDraw: GameState.accept_draw,
    DeclineDraw: GameState.decline_draw,
    ClaimDraw: GameState.claim_draw,
    Abort: GameState.abort,
}


def wall_clock_ms() -> int:
    """Return the wall-clock time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class CheckFlag:  # -> None
    """Sent by the actor's own timer when a flag may have fallen."""


class GameActors:
    """
    Makes the actor of each game, as a games supervisor's ``game_factory``.

    Args:
        journal: where every game's events go.
        epoch: the owner epoch to fence appends with, or a function giving
            it per game.
        now_ms: the time source of game clocks.
    """

    def __init__(
        self,
        journal: Journal,
        epoch: int | Callable[[str], int] = 1,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.journal = journal
        self._epoch = epoch
        self._now_ms = now_ms
        self._watchers: dict[str, Watchers] = {}

    def __repr__(self) -> str:
        return f"<GameActors watched={len(self._watchers)}>"

    def __call__(self, game_id: str) -> GameActor:
        watchers = self._watchers.get(game_id)
        if watchers is None:
            watchers = self._watchers[game_id] = Watchers(game_id, self._watchers)
        epoch = self._epoch if isinstance(self._epoch, int) else self._epoch(game_id)

        return GameActor(
            game_id, self.journal, epoch, watchers=watchers, now_ms=self._now_ms
        )


class GameActor(Actor[GameMessage | CheckFlag]):
    """
    Serves one game: commands, queries, subscriptions and its flag.

    Replies follow :mod:`livegame.actors.game.messages`; a refused command
    raises its :mod:`livegame.errors` error at the asker and changes nothing.

    Args:
        game_id: the game served.
        journal: its durable log; loaded on start, appended before each reply.
        epoch: the owner epoch fencing the appends.
        watchers: the game's subscribers, shared across restarts; a private
            set when None.
        now_ms: the time source of the game clock.
    """

    def __init__(
        self,
        game_id: str,
        journal: Journal,
        epoch: int,
        *,
        watchers: Watchers | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.game_id = game_id
        self.journal = journal
        self.epoch = epoch
        self.watchers = watchers if watchers is not None else Watchers(game_id)
        self._now_ms = now_ms
        # Loaded by on_start; no message arrives before.
        self._state: GameState | None = None
        # The deadline the flag timer is armed for, if any: never later than
        # the running flag's deadline.
        self._armed_ms: int | None = None

    def __repr__(self) -> str:
        state = self._state
        if state is None:
            return f"<GameActor {self.game_id} loading>"

        return (
            f"<GameActor {self.game_id} {state.status} ply={state.ply} "
            f"watchers={len(self.watchers)}>"
        )

    @property
    def state(self) -> GameState:
        """Return the game's state; only valid once the actor has started."""
        if self._state is None:
            raise RuntimeError(f"game {self.game_id} is not loaded")

        return self._state

    @property
    def ended(self) -> bool:
        """Whether the game is over: only reads can reach it any more."""
        state = self._state
        return state is not None and state.status != "started"

    @property
    def passivatable(self) -> bool:
        """Whether stopping now loses nothing: nobody watches and no clock runs."""
        state = self._state
        if state is None or self.watchers:
            return False

        return state.flag_deadline_ms() is None

    # Lifecycle.

    async def on_start(self) -> None:
        history = await self.journal.load(self.game_id)
        if history is None:
            raise GameNotFound(f"no game {self.game_id}", game_id=self.game_id)

        state = self._state = GameState.from_history(history)
        self.watchers.catch_up(state)
        self._arm_flag(self._now_ms())
        log.info(
            "game_actor_started",
            game_id=self.game_id,
            ply=state.ply,
            status=state.status,
            restarts=self.context.restarts,
        )

    async def on_stop(self) -> None:
        if not self.context.shutting_down:
            return  # a restart: the next incarnation takes over the watchers

        self.watchers.release()
        state = self._state
        log.info(
            "game_actor_stopped",
            game_id=self.game_id,
            ply=None if state is None else state.ply,
            status=None if state is None else state.status,
            watchers=len(self.watchers),
        )

    # Messages.

    async def receive(self, message: GameMessage | CheckFlag) -> Any:
        now_ms = self._now_ms()
        state = self.state
        # A fallen flag ends the game before anything else is considered.
        ended = state.check_flag(now_ms)
        if ended is not None:
            await self._commit((ended,))

        if isinstance(message, PlayMove):
            return await self._play(state, message, now_ms)
        if isinstance(message, GameAction):
            return await self._act(message, now_ms)

        return self._query(message, now_ms)

    async def _play(
        self, state: GameState, command: PlayMove, now_ms: int
    ) -> MoveResult:
        with span("game.move", parent=command.trace) as current:
            if current.is_recording():
                current.set_attribute("game.id", self.game_id)
                current.set_attribute("game.ply", command.ply)
            events = state.play(command.player, command.uci, command.ply, now_ms)
            with span("db.append"):
                await self._commit(events)

        # A retry produced no events and gets the original result.
        return state.move_result(command.ply + 1)

    async def _act(self, command: GameAction, now_ms: int) -> GameView:
        action = _ACTIONS[type(command)]
        await self._commit(action(self.state, command.player, now_ms))

        return self.state.view(now_ms)

    def _query(self, message: GameMessage | CheckFlag, now_ms: int) -> Any:
        state = self.state
        if isinstance(message, GetGame):
            return state.view(now_ms)
        if isinstance(message, GetMoves):
            return tuple(state.moves)
        if isinstance(message, Subscribe):
            self.watchers.add(message.subscriber)
            missed = () if message.since is None else state.moves_since(message.since)
            return Subscribed(state.view(now_ms), missed)
        if isinstance(message, Unsubscribe):
            self.watchers.remove(message.subscriber)
            return None
        if isinstance(message, CheckFlag):
            # The timer has fired; arm it again if it was early.
            self._armed_ms = None
            self._arm_flag(now_ms)
            return None

        raise BadRequest(f"a game takes no {type(message).__name__}")

    # Making changes durable, then visible.

    async def _commit(self, events: tuple[GameEvent, ...]) -> None:
        if not events:
            return

        try:
            await self.journal.append(self.game_id, self.epoch, events)
        except Fenced:
            log.warning("game_fenced", game_id=self.game_id, epoch=self.epoch)
            self.context.stop_self()
            raise
        except LiveGameError as error:
            # The append may or may not have happened: start over from the
            # journal rather than guess.
            log.warning(
                "journal_append_failed", game_id=self.game_id, error=repr(error)
            )
            self.context.fail(error)
            raise

        state = self.state
        for event in events:
            state.apply(event)
        self._arm_flag(events[-1].at_ms)
        self.watchers.publish(events)
        if isinstance(events[-1], GameEnded):
            self._log_end(events[-1])

    def _arm_flag(self, now_ms: int) -> None:
        deadline = self.state.flag_deadline_ms()
        armed = self._armed_ms
        if deadline is None:
            if armed is not None:
                self._armed_ms = None
                self.context.timers.cancel(_FLAG_TIMER)
            return
        # A timer armed for an earlier deadline stays: it fires early, and
        # CheckFlag arms it again. Most moves push the deadline later, so
        # most moves leave the timer alone. One that has fired is armed
        # again, in case its CheckFlag found the mailbox full.
        timers = self.context.timers
        if armed is not None and armed <= deadline and _FLAG_TIMER in timers:
            return

        self._armed_ms = deadline
        delay_ms = max(0, deadline - now_ms) + _FLAG_MARGIN_MS
        timers.start_once(_FLAG_TIMER, delay_ms / 1000, CheckFlag())

    def _log_end(self, ended: GameEnded) -> None:
        count_game_end(ended.status)
        log.info(
            "game_ended",
            game_id=self.game_id,
            status=ended.status,
            winner=ended.winner,
            reason=ended.reason,
            plies=ended.ply,
        )
