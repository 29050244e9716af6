"""The games supervisor: activation on demand, passivation, per-game budgets."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from supervision_helpers import (
    Crash,
    Echo,
    Gate,
    Hold,
    Quit,
    settle,
    wait_until,
)

from livegame.actors import Actor, ActorCrashed, ActorSystem, AskTimeout, Status
from livegame.errors import BadRequest, GameNotFound
from livegame.supervisor import (
    Backoff,
    ChildSpec,
    Games,
    GamesSupervisor,
    Intensity,
    Supervisor,
    check_game_id,
    spawn_root,
)

pytestmark = pytest.mark.anyio

NO_DELAY = Backoff(initial=0.0, jitter=0.0)


class Lobby:
    """The games that exist, and what their actors did."""

    def __init__(self, *known: str) -> None:
        self.known = set(known)
        self.made: list[str] = []
        self.events: list[str] = []
        # Set to park the next on_stop of a game until the gate opens.
        self.stop_gate: Gate | None = None

    def of(self, game_id: str) -> list[str]:
        return [e.split(" ", 1)[1] for e in self.events if e.startswith(game_id + " ")]


class GameStub(Actor[Any]):
    """A game actor that exists only for the games its lobby knows."""

    def __init__(self, game_id: str, lobby: Lobby, passivatable: bool = True) -> None:
        lobby.made.append(game_id)
        self.game_id = game_id
        self.lobby = lobby
        self.passivatable = passivatable

    async def on_start(self) -> None:
        if self.game_id not in self.lobby.known:
            raise GameNotFound(f"no game {self.game_id}", game_id=self.game_id)
        self.lobby.events.append(f"{self.game_id} start")

    async def on_restart(self, error: BaseException) -> None:
        self.lobby.events.append(f"{self.game_id} restart")

    async def on_stop(self) -> None:
        self.lobby.events.append(f"{self.game_id} stop")
        gate, self.lobby.stop_gate = self.lobby.stop_gate, None
        if gate is not None:
            gate.entered.set()
            await gate.opened.wait()

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Echo):
            return message.value
        if isinstance(message, Crash):
            raise RuntimeError(message.reason)
        if isinstance(message, Quit):
            self.context.stop_self()
            return "bye"
        if isinstance(message, Hold):
            message.gate.entered.set()
            await message.gate.opened.wait()
            return "released"
        raise TypeError(f"a GameStub cannot handle {message!r}")


async def start_games(
    system: ActorSystem,
    lobby: Lobby,
    *,
    game: type[GameStub] = GameStub,
    passivatable: bool = True,
    **options: Any,
) -> Games:
    """Start / -> /user -> /user/games over ``lobby`` and return the facade."""
    options.setdefault("backoff", NO_DELAY)

    def games() -> GamesSupervisor:
        return GamesSupervisor(
            lambda game_id: game(game_id, lobby, passivatable), **options
        )

    def user() -> Supervisor:
        return Supervisor([ChildSpec("games", games)], backoff=NO_DELAY)

    await spawn_root(system, lambda: Supervisor([ChildSpec("user", user)]))

    return Games(system)


# Activation.


async def test_a_game_is_activated_on_first_use(system: ActorSystem) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby)
    assert games.local("g1") is None

    ref = await games.activate("g1")

    assert ref.path == "/user/games/g1"
    assert await ref.ask(Echo("e4")) == "e4"
    assert games.local("g1") is ref
    assert games.active() == 1
    assert lobby.of("g1") == ["start"]


async def test_a_running_game_is_found_without_asking_the_supervisor(
    system: ActorSystem,
) -> None:
    games = await start_games(system, Lobby("g1"))
    first = await games.activate("g1")
    asked = system.cell("/user/games").processed

    again = await games.activate("g1")

    assert again is first
    assert system.cell("/user/games").processed == asked


async def test_concurrent_activations_of_one_game_make_one_actor(
    system: ActorSystem,
) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby)
    refs: list[Any] = []

    async def activate() -> None:
        refs.append(await games.activate("g1"))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(activate)

    assert len(refs) == 10
    assert all(ref is refs[0] for ref in refs)
    assert lobby.made == ["g1"]


async def test_an_unknown_game_raises_game_not_found_and_leaves_nothing(
    system: ActorSystem,
) -> None:
    lobby = Lobby()
    games = await start_games(system, lobby)

    with pytest.raises(GameNotFound, match="no game g404"):
        await games.activate("g404")
    await settle()

    assert games.local("g404") is None
    assert games.active() == 0
    assert system.cell("/user/games").restarts == 0

    # Nothing is cached: the game may exist by the next activation.
    lobby.known.add("g404")
    assert await (await games.activate("g404")).ask(Echo("found")) == "found"
    assert lobby.made == ["g404", "g404"]


async def test_activation_gives_up_on_a_game_that_cannot_start_in_time(
    system: ActorSystem,
) -> None:
    class Broken(GameStub):
        async def on_start(self) -> None:
            raise ConnectionError("database down")

        async def on_restart(self, error: BaseException) -> None:
            await self.on_start()

    games = await start_games(
        system, Lobby("g1"), game=Broken, backoff=Backoff(initial=60.0)
    )

    # The game waits a minute for its restart; the caller does not.
    with anyio.fail_after(2), pytest.raises(AskTimeout, match="g1"):
        await games.activate("g1", timeout=0.05)


@pytest.mark.parametrize("game_id", ["", "has space", "a/b", "x" * 65])
async def test_a_bad_game_id_is_refused_before_the_supervisor_sees_it(
    system: ActorSystem, game_id: str
) -> None:
    games = await start_games(system, Lobby())
    asked = system.cell("/user/games").processed

    with pytest.raises(BadRequest):
        await games.activate(game_id)

    assert system.cell("/user/games").processed == asked


def test_a_game_id_is_letters_digits_dashes_and_underscores() -> None:
    assert check_game_id("Ab-9_z") == "Ab-9_z"
    assert check_game_id("x" * 64) == "x" * 64


# Passivation.


async def test_an_idle_game_is_passivated(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby, passivate_after=0.05)
    await games.activate("g1")

    await wait_until(lambda: system.find("/user/games/g1") is None)

    assert lobby.of("g1") == ["start", "stop"]
    assert games.active() == 0
    assert {"event": "game_passivated", "game_id": "g1", "log_level": "debug"} in logs


class EndedGameStub(GameStub):
    """A game whose actor says it has ended."""

    ended = True


async def test_an_ended_game_is_passivated_sooner_than_a_live_one(
    system: ActorSystem,
) -> None:
    lobby = Lobby("over", "live")
    ended = await start_games(
        system,
        lobby,
        game=EndedGameStub,
        passivate_after=60.0,
        ended_passivate_after=0.05,
    )
    await ended.activate("over")

    await wait_until(lambda: system.find("/user/games/over") is None)

    assert lobby.of("over") == ["start", "stop"]


async def test_a_live_game_waits_for_the_full_idle_time(system: ActorSystem) -> None:
    lobby = Lobby("live")
    games = await start_games(
        system, lobby, passivate_after=60.0, ended_passivate_after=0.05
    )
    ref = await games.activate("live")
    swept = system.cell("/user/games").processed

    await wait_until(lambda: system.cell("/user/games").processed >= swept + 3)

    assert games.local("live") is ref


async def test_a_passivated_game_comes_back_on_its_next_activation(
    system: ActorSystem,
) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby, passivate_after=0.05)
    first = await games.activate("g1")
    await wait_until(lambda: system.find("/user/games/g1") is None)

    second = await games.activate("g1")

    assert second is not first
    assert await second.ask(Echo("back")) == "back"
    assert lobby.of("g1") == ["start", "stop", "start"]


async def test_a_busy_game_is_not_passivated(system: ActorSystem) -> None:
    games = await start_games(system, Lobby("busy", "idle"), passivate_after=0.05)
    busy = await games.activate("busy")
    await games.activate("idle")
    hold = Hold()
    busy.tell(hold)
    await hold.gate.entered.wait()

    # The idle game going shows that sweeps have looked at the busy one.
    await wait_until(lambda: games.local("idle") is None)

    assert games.local("busy") is busy
    hold.gate.open()


async def test_a_game_that_is_not_passivatable_stays(system: ActorSystem) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby, passivatable=False, passivate_after=0.05)
    ref = await games.activate("g1")
    swept = system.cell("/user/games").processed

    # Several sweeps later it is still there.
    await wait_until(lambda: system.cell("/user/games").processed >= swept + 3)

    assert games.local("g1") is ref


async def test_an_activation_during_passivation_waits_for_the_old_actor_to_end(
    system: ActorSystem,
) -> None:
    lobby = Lobby("g1")
    lobby.stop_gate = gate = Gate()
    games = await start_games(system, lobby, passivate_after=0.05)
    await games.activate("g1")
    with anyio.fail_after(2):
        await gate.entered.wait()

    async with anyio.create_task_group() as tg:
        refs: list[Any] = []

        async def activate() -> None:
            refs.append(await games.activate("g1"))

        tg.start_soon(activate)
        await settle()
        # The old incarnation is still in on_stop: no new one yet.
        assert lobby.of("g1") == ["start", "stop"]
        gate.open()

    assert lobby.of("g1") == ["start", "stop", "start"]
    assert await refs[0].ask(Echo("fresh")) == "fresh"


async def test_passivation_goes_on_after_the_games_supervisor_restarts(
    system: ActorSystem,
) -> None:
    games = await start_games(system, Lobby("g1", "g2"), passivate_after=0.05)
    await games.activate("g1")

    system.kill("/user/games")
    await settle()
    await games.activate("g2")

    await wait_until(lambda: games.active() == 0)
    assert system.cell("/user/games").restarts == 1


# Crashes and budgets.


async def test_a_crashed_game_is_restarted_in_place(system: ActorSystem) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby)
    ref = await games.activate("g1")

    with pytest.raises(ActorCrashed):
        await ref.ask(Crash())

    assert await ref.ask(Echo("same ref")) == "same ref"
    assert lobby.of("g1") == ["start", "stop", "restart"]


async def test_a_game_that_ends_on_its_own_is_not_restarted(
    system: ActorSystem,
) -> None:
    lobby = Lobby("g1")
    games = await start_games(system, lobby)
    ref = await games.activate("g1")

    await ref.ask(Quit())
    await settle()

    assert games.local("g1") is None
    assert lobby.of("g1") == ["start", "stop"]


async def test_a_game_past_its_own_budget_stops_alone(
    system: ActorSystem, logs: list[dict[str, Any]]
) -> None:
    games = await start_games(
        system, Lobby("bad", "good"), game_intensity=Intensity(2, 60.0)
    )
    bad = await games.activate("bad")
    good = await games.activate("good")

    for _ in range(3):
        with pytest.raises(ActorCrashed):
            await bad.ask(Crash())
        await settle()

    assert games.local("bad") is None
    assert await good.ask(Echo("unaffected")) == "unaffected"
    assert system.cell("/user/games").restarts == 0
    [spent] = [e for e in logs if e["event"] == "game_restart_budget_spent"]
    assert (spent["game_id"], spent["max_restarts"]) == ("bad", 2)


async def test_a_game_crashing_again_and_again_slows_only_its_own_restarts(
    system: ActorSystem,
) -> None:
    # A third restart in a row would wait ten seconds, a first one a millisecond.
    backoff = Backoff(initial=0.001, multiplier=100.0, maximum=60.0, jitter=0.0)
    games = await start_games(system, Lobby("bad", "good"), backoff=backoff)
    bad = await games.activate("bad")
    good = await games.activate("good")
    for _ in range(2):
        with pytest.raises(ActorCrashed):
            await bad.ask(Crash())

    with pytest.raises(ActorCrashed):
        await good.ask(Crash())

    with anyio.fail_after(5):
        assert await good.ask(Echo("back at once")) == "back at once"
        assert await bad.ask(Echo("back")) == "back"


async def test_a_game_stopped_for_its_budget_can_be_activated_again(
    system: ActorSystem,
) -> None:
    lobby = Lobby("bad")
    games = await start_games(system, lobby, game_intensity=Intensity(0, 60.0))
    bad = await games.activate("bad")
    bad.tell(Crash())
    await settle()
    assert games.local("bad") is None

    again = await games.activate("bad")

    assert await again.ask(Echo("again")) == "again"


async def test_many_games_failing_at_once_escalate_and_keep_their_refs(
    system: ActorSystem,
) -> None:
    games = await start_games(
        system,
        Lobby("g1", "g2", "g3"),
        intensity=Intensity(2, 60.0),
        game_intensity=Intensity(10, 60.0),
    )
    refs = [await games.activate(g) for g in ("g1", "g2", "g3")]

    for ref in refs:
        ref.tell(Crash())
        await settle()

    assert system.cell("/user/games").restarts == 1
    assert system.cell("/user").restarts == 0
    for game_id, ref in zip(("g1", "g2", "g3"), refs, strict=True):
        assert games.local(game_id) is ref
        assert await ref.ask(Echo(game_id)) == game_id
        assert system.cell(ref.path).status is Status.RUNNING


async def test_the_facade_repr_names_its_path(system: ActorSystem) -> None:
    games = await start_games(system, Lobby())

    assert repr(games) == "<Games /user/games>"
