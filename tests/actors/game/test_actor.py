"""
Tests of the game actor on the real actor runtime and an in-memory journal.

Journals are wrapped to decide when an append becomes durable, or to fail it;
time-dependent tests either inject the game clock or wait for the real flag
timer, never for a fixed delay.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import chess
import pytest

from livegame.actors import ActorError, ActorSystem
from livegame.actors.game.actor import CheckFlag, GameActor, GameActors
from livegame.actors.game.events import GameCreated, GameEnded, GameEvent, MovePlayed
from livegame.actors.game.journal import GameHistory, InMemoryJournal, Journal
from livegame.actors.game.messages import (
    AcceptDraw,
    GetGame,
    MoveResult,
    OfferDraw,
    PlayMove,
    Resign,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from livegame.actors.game.rules import create_game
from livegame.actors.game.watchers import Watchers
from livegame.actors.timers import Timers
from livegame.errors import (
    BadRequest,
    Fenced,
    GameNotFound,
    IllegalMove,
    NotYourTurn,
    Overloaded,
    StorageError,
)
from livegame.supervisor import (
    Backoff,
    ChildSpec,
    Games,
    GamesSupervisor,
    Intensity,
    Supervisor,
    spawn_root,
)

pytestmark = pytest.mark.anyio

WHITE, BLACK = "ann", "bob"
FOOLS_MATE = ["f2f3", "e7e5", "g2g4", "d8h4"]
# Every wait in these tests is for a condition; this bounds each one.
WAIT_S = 10.0


class Recorder:
    """A subscriber that keeps what it is sent and lets a test wait for it."""

    def __init__(self) -> None:
        self.events: list[GameEvent] = []
        self._changed = anyio.Event()

    def deliver(self, event: GameEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, done: Callable[[list[GameEvent]], bool]) -> None:
        with anyio.fail_after(WAIT_S):
            while not done(self.events):
                self._changed = anyio.Event()
                await self._changed.wait()


class BrokenSubscriber:
    def deliver(self, event: GameEvent) -> None:
        raise RuntimeError("socket gone")


@dataclass
class Node:
    system: ActorSystem
    games: Games

    async def ask(self, game_id: str, message: Any) -> Any:
        ref = await self.games.activate(game_id)
        with anyio.fail_after(WAIT_S):
            return await ref.ask(message, timeout=WAIT_S)

    def actor(self, game_id: str) -> GameActor:
        instance = self.system.cell(f"/user/games/{game_id}").instance
        assert isinstance(instance, GameActor)
        return instance


@asynccontextmanager
async def running_node(
    journal: Journal, now_ms: Callable[[], int] | None = None
) -> AsyncIterator[Node]:
    """Run a node whose games supervisor restarts games at once, without limit."""
    actors = (
        GameActors(journal) if now_ms is None else GameActors(journal, now_ms=now_ms)
    )

    def games() -> GamesSupervisor:
        return GamesSupervisor(
            actors,
            game_intensity=Intensity(max_restarts=10_000, within=60.0),
            intensity=Intensity(max_restarts=10_000, within=60.0),
            backoff=Backoff(initial=0.0, maximum=0.0),
        )

    def user() -> Supervisor:
        return Supervisor([ChildSpec("games", games)])

    async with ActorSystem("test") as system:
        await spawn_root(system, lambda: Supervisor([ChildSpec("user", user)]))
        yield Node(system, Games(system))


async def new_game(
    journal: Journal, game_id: str = "g1", initial_ms: int | None = None
) -> None:
    await journal.create(create_game(game_id, WHITE, BLACK, initial_ms, 0, 0))


def player_at(ply: int) -> str:
    return WHITE if ply % 2 == 0 else BLACK


async def play_line(node: Node, game_id: str, ucis: Sequence[str]) -> MoveResult:
    result = None
    for ply, uci in enumerate(ucis):
        result = await node.ask(game_id, PlayMove(player_at(ply), uci, ply))
    assert isinstance(result, MoveResult)

    return result


class GatedJournal:
    """An in-memory journal whose appends wait until the test opens the gate."""

    def __init__(self, inner: InMemoryJournal, *, durable_first: bool = False) -> None:
        self.inner = inner
        # Make the events durable before waiting, instead of after.
        self.durable_first = durable_first
        self.entered = anyio.Event()
        self.gate = anyio.Event()

    async def create(self, event: GameCreated) -> None:
        await self.inner.create(event)

    async def load(self, game_id: str) -> GameHistory | None:
        return await self.inner.load(game_id)

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        if self.durable_first:
            await self.inner.append(game_id, epoch, events)
        self.entered.set()
        await self.gate.wait()
        if not self.durable_first:
            await self.inner.append(game_id, epoch, events)


@dataclass
class FailingJournal:
    """An in-memory journal whose next append fails, before or after storing."""

    inner: InMemoryJournal
    fail_next: type[Exception] | None = None
    after_storing: bool = False
    loads: int = 0

    async def create(self, event: GameCreated) -> None:
        await self.inner.create(event)

    async def load(self, game_id: str) -> GameHistory | None:
        self.loads += 1
        return await self.inner.load(game_id)

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        error, self.fail_next = self.fail_next, None
        if error is not None and not self.after_storing:
            raise error("the journal failed")
        await self.inner.append(game_id, epoch, events)
        if error is not None:
            raise error("the journal failed after storing")


# Acknowledgement and durability


async def test_a_move_is_acknowledged_only_after_its_append_is_durable() -> None:
    memory = InMemoryJournal()
    journal = GatedJournal(memory)
    await new_game(journal)
    replies: list[MoveResult] = []
    recorder = Recorder()

    async with running_node(journal) as node, anyio.create_task_group() as tg:
        await node.ask("g1", Subscribe(recorder))

        async def move() -> None:
            replies.append(await node.ask("g1", PlayMove(WHITE, "e2e4", 0)))

        tg.start_soon(move)
        with anyio.fail_after(WAIT_S):
            await journal.entered.wait()
        await anyio.wait_all_tasks_blocked()

        assert replies == []
        assert recorder.events == []
        assert memory.events("g1") == []

        journal.gate.set()

    assert [r.uci for r in replies] == ["e2e4"]
    assert memory.events("g1") == recorder.events
    assert [type(e) for e in recorder.events] == [MovePlayed]


async def test_an_unknown_game_is_not_found() -> None:
    async with running_node(InMemoryJournal()) as node:
        with pytest.raises(GameNotFound):
            await node.ask("nope", GetGame())


async def test_a_refused_move_reaches_the_asker_and_changes_nothing() -> None:
    journal = InMemoryJournal()
    await new_game(journal)

    async with running_node(journal) as node:
        await play_line(node, "g1", ["e2e4"])
        before = await node.ask("g1", GetGame())

        with pytest.raises(IllegalMove):
            await node.ask("g1", PlayMove(BLACK, "e7e4", 1))
        with pytest.raises(NotYourTurn):
            await node.ask("g1", PlayMove(WHITE, "d2d4", 1))
        with pytest.raises(BadRequest):
            await node.ask("g1", "not a game message")

        assert await node.ask("g1", GetGame()) == before
        assert node.system.cell("/user/games/g1").restarts == 0
    assert len(journal.events("g1")) == 1


async def test_a_retried_move_gets_the_original_result_and_is_stored_once() -> None:
    journal = InMemoryJournal()
    await new_game(journal)

    async with running_node(journal) as node:
        first = await node.ask("g1", PlayMove(WHITE, "e2e4", 0))
        again = await node.ask("g1", PlayMove(WHITE, "e2e4", 0))

    assert again == first
    assert [e.seq for e in journal.events("g1")] == [2]


# Subscribers


async def test_subscribers_get_every_event_in_seq_order() -> None:
    journal = InMemoryJournal()
    await new_game(journal)
    watchers = [Recorder(), Recorder()]

    async with running_node(journal) as node:
        for recorder in watchers:
            await node.ask("g1", Subscribe(recorder))
        await play_line(node, "g1", FOOLS_MATE[:2])
        await node.ask("g1", OfferDraw(WHITE))
        await node.ask("g1", AcceptDraw(BLACK))

    stored = journal.events("g1")
    assert [e.type for e in stored] == [
        "move_played",
        "move_played",
        "draw_offered",
        "game_ended",
    ]
    for recorder in watchers:
        assert recorder.events == stored


async def test_subscribing_returns_the_view_and_the_moves_missed_since_a_ply() -> None:
    journal = InMemoryJournal()
    await new_game(journal)
    recorder = Recorder()

    async with running_node(journal) as node:
        await play_line(node, "g1", ["e2e4", "e7e5", "g1f3"])

        subscribed = await node.ask("g1", Subscribe(recorder, since=1))
        again = await node.ask("g1", Subscribe(recorder, since=None))
        await node.ask("g1", PlayMove(BLACK, "b8c6", 3))

    assert isinstance(subscribed, Subscribed)
    assert subscribed.view.ply == 3
    assert [m.ply for m in subscribed.missed] == [2, 3]
    assert again.missed == ()
    # Subscribed twice, delivered once.
    assert [e.ply for e in recorder.events] == [4]


async def test_an_unsubscribed_or_broken_subscriber_gets_nothing_more() -> None:
    journal = InMemoryJournal()
    await new_game(journal)
    gone, kept = Recorder(), Recorder()

    async with running_node(journal) as node:
        for subscriber in (gone, kept, BrokenSubscriber()):
            await node.ask("g1", Subscribe(subscriber))
        await node.ask("g1", Unsubscribe(gone))
        await play_line(node, "g1", ["e2e4", "e7e5"])

        assert len(node.actor("g1").watchers) == 1

    assert gone.events == []
    assert len(kept.events) == 2


# Clocks


async def test_the_flag_falls_by_timer_when_nobody_moves() -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=60)
    recorder = Recorder()

    async with running_node(journal) as node:
        await node.ask("g1", Subscribe(recorder))
        await play_line(node, "g1", ["e2e4", "e7e5"])

        await recorder.wait_for(lambda events: isinstance(events[-1], GameEnded))

        view = await node.ask("g1", GetGame())

    ended = journal.events("g1")[-1]
    assert isinstance(ended, GameEnded)
    assert (ended.status, ended.winner, ended.white_ms) == ("timeout", "black", 0)
    assert recorder.events[-1] == ended
    assert (view.status, view.clock.running) == ("timeout", None)


async def test_a_message_after_the_deadline_ends_the_game_first() -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=10_000)
    now = [0]

    async with running_node(journal, now_ms=lambda: now[0]) as node:
        await play_line(node, "g1", ["e2e4", "e7e5"])
        now[0] = 10_000

        view = await node.ask("g1", GetGame())

    assert (view.status, view.winner, view.reason) == ("timeout", "black", "timeout")
    assert isinstance(journal.events("g1")[-1], GameEnded)


async def test_an_early_flag_timer_is_armed_again() -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=10_000)
    now = [0]

    async with running_node(journal, now_ms=lambda: now[0]) as node:
        await play_line(node, "g1", ["e2e4", "e7e5"])
        assert await node.ask("g1", CheckFlag()) is None

        assert "flag" in node.system.cell("/user/games/g1").timers
        assert (await node.ask("g1", GetGame())).status == "started"


async def test_only_an_earlier_deadline_arms_the_flag_timer_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=10_000)
    now = [0]
    armed: list[float] = []
    start_once = Timers.start_once

    def spy(self: Timers[Any], key: object, delay: float, message: Any) -> None:
        armed.append(delay)
        start_once(self, key, delay, message)

    monkeypatch.setattr(Timers, "start_once", spy)

    async with running_node(journal, now_ms=lambda: now[0]) as node:
        # The clock starts: White's flag would fall at 10 s.
        await play_line(node, "g1", ["e2e4", "e7e5"])
        assert armed == [10.001]

        # Black's deadline (11 s), then White's (18 s), come later.
        now[0] = 1_000
        await node.ask("g1", PlayMove(WHITE, "g1f3", 2))
        now[0] = 9_000
        await node.ask("g1", PlayMove(BLACK, "b8c6", 3))
        assert armed == [10.001]

        # The early timer fires and is armed for the deadline then.
        await node.ask("g1", CheckFlag())
        assert armed == [10.001, 9.001]

        # Black's deadline, 11.5 s, comes before the armed 18 s.
        now[0] = 9_500
        await node.ask("g1", PlayMove(WHITE, "f1c4", 4))
        assert armed == [10.001, 9.001, 2.001]


async def test_a_flag_timer_that_was_lost_is_armed_again_by_the_next_move() -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=10_000)
    now = [0]

    async with running_node(journal, now_ms=lambda: now[0]) as node:
        await play_line(node, "g1", ["e2e4", "e7e5"])
        timers = node.system.cell("/user/games/g1").timers
        # As if the timer had fired into a full mailbox: no CheckFlag comes.
        timers.cancel("flag")

        now[0] = 1_000
        await node.ask("g1", PlayMove(WHITE, "g1f3", 2))

        assert "flag" in timers


async def test_a_flag_timer_that_fires_early_still_ends_the_game_on_time() -> None:
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=300)
    recorder = Recorder()

    async with running_node(journal) as node:
        await node.ask("g1", Subscribe(recorder))
        # White's reply moves the deadline from White's flag to Black's,
        # later: the timer armed for White's fires first, finds no flag
        # fallen and waits for Black's.
        await play_line(node, "g1", ["e2e4", "e7e5", "g1f3"])

        await recorder.wait_for(lambda events: isinstance(events[-1], GameEnded))

    ended = journal.events("g1")[-1]
    assert isinstance(ended, GameEnded)
    assert (ended.status, ended.winner, ended.black_ms) == ("timeout", "white", 0)


# Crashes and restarts


async def test_a_killed_game_is_rebuilt_from_its_journal() -> None:
    journal = InMemoryJournal()
    await new_game(journal)
    recorder = Recorder()

    async with running_node(journal) as node:
        await node.ask("g1", Subscribe(recorder))
        await play_line(node, "g1", ["e2e4", "e7e5", "g1f3"])
        before = await node.ask("g1", GetGame())

        node.system.kill("/user/games/g1")
        after = await node.ask("g1", GetGame())
        await node.ask("g1", PlayMove(BLACK, "b8c6", 3))

        assert node.system.cell("/user/games/g1").restarts == 1

    assert after == before
    # The watchers outlived the crash.
    assert [e.ply for e in recorder.events] == [1, 2, 3, 4]


async def test_a_move_stored_before_a_crash_reaches_subscribers_after_it() -> None:
    memory = InMemoryJournal()
    journal = GatedJournal(memory, durable_first=True)
    await new_game(journal)
    recorder = Recorder()

    async with running_node(journal) as node:
        await node.ask("g1", Subscribe(recorder))
        async with anyio.create_task_group() as tg:

            async def move() -> None:
                with pytest.raises(ActorError):
                    await node.ask("g1", PlayMove(WHITE, "e2e4", 0))

            tg.start_soon(move)
            with anyio.fail_after(WAIT_S):
                await journal.entered.wait()
            node.system.kill("/user/games/g1")

        retried = await node.ask("g1", PlayMove(WHITE, "e2e4", 0))

    assert retried.ply == 1
    assert recorder.events == memory.events("g1")
    assert len(recorder.events) == 1


@pytest.mark.parametrize("after_storing", [False, True])
async def test_a_failed_append_is_refused_and_the_game_reloads(
    after_storing: bool,
) -> None:
    memory = InMemoryJournal()
    journal = FailingJournal(memory, after_storing=after_storing)
    await new_game(journal)

    async with running_node(journal) as node:
        journal.fail_next = StorageError
        with pytest.raises(StorageError):
            await node.ask("g1", PlayMove(WHITE, "e2e4", 0))

        # Whether or not the move was stored, the retry settles it.
        result = await node.ask("g1", PlayMove(WHITE, "e2e4", 0))

        assert journal.loads == 2
    assert result.ply == 1
    assert len(memory.events("g1")) == 1


async def test_a_fenced_game_stops_serving() -> None:
    journal = InMemoryJournal()
    await new_game(journal)

    async with running_node(journal) as node:
        ref = await node.games.activate("g1")
        cell = node.system.cell("/user/games/g1")
        journal.fence("g1", 2)

        with pytest.raises(Fenced):
            await ref.ask(PlayMove(WHITE, "e2e4", 0))
        await cell.wait_stopped()

        assert not ref.alive
    assert journal.events("g1") == []


# Passivation


async def test_a_game_is_passivatable_only_unwatched_and_with_no_clock_running() -> (
    None
):
    journal = InMemoryJournal()
    await new_game(journal, initial_ms=600_000)
    recorder = Recorder()

    async with running_node(journal) as node:
        await node.ask("g1", GetGame())
        actor = node.actor("g1")
        seen = [actor.passivatable]

        await node.ask("g1", Subscribe(recorder))
        seen.append(actor.passivatable)
        await node.ask("g1", Unsubscribe(recorder))
        await play_line(node, "g1", ["e2e4", "e7e5"])
        seen.append(actor.passivatable)
        ended = [actor.ended]
        await node.ask("g1", Resign(WHITE))
        seen.append(actor.passivatable)
        ended.append(actor.ended)

        assert seen == [True, False, False, True]
        assert ended == [False, True]
        assert repr(actor) == "<GameActor g1 resign ply=2 watchers=0>"


def test_watchers_leave_their_registry_once_unwatched() -> None:
    registry: dict[str, Watchers] = {}
    watchers = registry["g1"] = Watchers("g1", registry)
    recorder = Recorder()
    watchers.add(recorder)

    watchers.release()
    assert registry == {"g1": watchers}

    watchers.remove(recorder)
    watchers.release()
    assert registry == {}


# Chaos


@dataclass
class ChaosJournal:
    """An in-memory journal that yields around each step, so kills land anywhere."""

    inner: InMemoryJournal
    # Set (and replaced) at each append.
    appended: anyio.Event = field(default_factory=anyio.Event)

    async def create(self, event: GameCreated) -> None:
        await self.inner.create(event)

    async def load(self, game_id: str) -> GameHistory | None:
        await anyio.lowlevel.checkpoint()
        return await self.inner.load(game_id)

    async def append(
        self, game_id: str, epoch: int, events: Sequence[GameEvent]
    ) -> None:
        await anyio.lowlevel.checkpoint()
        await self.inner.append(game_id, epoch, events)
        self.appended.set()
        self.appended = anyio.Event()
        # Durable but not yet acknowledged: the ambiguous moment.
        await anyio.lowlevel.checkpoint()


@dataclass
class Player:
    """Plays both sides of one game, retrying each move until it is settled."""

    game_id: str
    rng: random.Random
    board: chess.Board = field(default_factory=chess.Board)
    acked: list[MoveResult] = field(default_factory=list)
    failed_asks: int = 0
    # Failed asks whose move the journal turned out to hold.
    stored_unacked: int = 0

    async def play(self, node: Node, journal: InMemoryJournal, plies: int) -> None:
        while len(self.acked) < plies and not self.board.is_game_over():
            ply = len(self.acked)
            uci = self.rng.choice(sorted(m.uci() for m in self.board.legal_moves))
            result = await self._settle(
                node, journal, PlayMove(player_at(ply), uci, ply)
            )
            assert (result.ply, result.uci) == (ply + 1, uci)
            self.acked.append(result)
            self.board.push_uci(uci)

    async def _settle(
        self, node: Node, journal: InMemoryJournal, move: PlayMove
    ) -> MoveResult:
        while True:
            try:
                result: MoveResult = await node.ask(self.game_id, move)
                return result
            except (ActorError, Overloaded):
                # Crashed, killed or restarting: the move may be stored or not.
                self.failed_asks += 1
                stored = journal.events(self.game_id)
                if stored and stored[-1].ply == move.ply + 1:
                    self.stored_unacked += 1


async def test_chaos_kills_never_lose_or_invent_an_acknowledged_move() -> None:
    games, plies = 12, 40
    memory = InMemoryJournal()
    journal = ChaosJournal(memory)
    rng = random.Random(20240601)
    players = [Player(f"c{i}", random.Random(rng.random())) for i in range(games)]
    recorders = {p.game_id: Recorder() for p in players}
    for player in players:
        await new_game(journal, player.game_id)
    kills = 0

    async with running_node(journal) as node:
        for game_id, recorder in recorders.items():
            await node.ask(game_id, Subscribe(recorder))

        async def killer() -> None:
            nonlocal kills
            # Kill a random game each time the journal grows.
            while True:
                await journal.appended.wait()
                victim = rng.choice(players).game_id
                try:
                    node.system.kill(f"/user/games/{victim}")
                    kills += 1
                except ActorError:
                    pass  # not running right now: it is restarting

        async with anyio.create_task_group() as chaos:
            chaos.start_soon(killer)
            async with anyio.create_task_group() as play:
                for player in players:
                    play.start_soon(player.play, node, memory, plies)
            chaos.cancel_scope.cancel()

        for player in players:
            await node.ask(player.game_id, GetGame())

    assert kills > games
    # The kills must have hit moves in flight, stored or not, for this test
    # to prove anything.
    failed_asks = sum(p.failed_asks for p in players)
    stored_unacked = sum(p.stored_unacked for p in players)
    assert failed_asks > stored_unacked > 0
    for player in players:
        stored = memory.events(player.game_id)
        moves = [e for e in stored if isinstance(e, MovePlayed)]
        # Exactly the acknowledged moves: none lost, none extra.
        assert [(m.ply, m.uci) for m in moves] == [(r.ply, r.uci) for r in player.acked]
        replay = chess.Board()
        for move in moves:
            replay.push_uci(move.uci)
            assert move.fen == replay.fen()
        assert replay.fen() == player.board.fen()
        # And every watcher saw every event once, in order, across the kills.
        assert recorders[player.game_id].events == stored


async def test_the_factory_gives_each_game_its_epoch_and_lasting_watchers() -> None:
    journal = InMemoryJournal()
    actors = GameActors(journal, epoch=lambda game_id: len(game_id))

    first, second = actors("g1"), actors("g1")

    assert first.epoch == 2
    assert first.watchers is second.watchers
    assert actors("game3").watchers is not first.watchers
