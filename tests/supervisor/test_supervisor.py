"""The supervisor actor: strategies, restart types, intensity and backoff."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from supervision_helpers import (
    Bump,
    Child,
    Crash,
    Echo,
    Hold,
    Quit,
    Tree,
    ask_soon,
    settle,
)

from livegame.actors import (
    ActorCrashed,
    ActorError,
    ActorExists,
    ActorStopped,
    ActorSystem,
    Status,
)
from livegame.supervisor import (
    Backoff,
    ChildSpec,
    Intensity,
    RestartIntensityExceeded,
    RestartType,
    StartChild,
    StopChild,
    Strategy,
    Supervisor,
    spawn_root,
)

pytestmark = pytest.mark.anyio

# Restarts at once, so a test can wait for them with settle().
NO_DELAY = Backoff(initial=0.0, jitter=0.0)


def spec(
    tree: Tree, name: str, restart: RestartType = RestartType.PERMANENT
) -> ChildSpec:
    return ChildSpec(name, lambda: Child(tree), restart=restart, capacity=16)


async def start_root(
    system: ActorSystem,
    children: list[ChildSpec],
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    **options: Any,
) -> None:
    options.setdefault("backoff", NO_DELAY)
    await spawn_root(system, lambda: Supervisor(children, strategy=strategy, **options))


# Strategies.


async def test_one_for_one_restarts_only_the_crashed_child(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, n) for n in "abc"])
    b = system.ref("/b")

    with pytest.raises(ActorCrashed):
        await b.ask(Crash())
    await settle()

    assert tree.hooks("/a") == ["start"]
    assert tree.hooks("/b") == ["start", "stop", "restart"]
    assert tree.hooks("/c") == ["start"]
    assert system.ref("/b") is b
    assert await b.ask(Echo("back")) == "back"


async def test_one_for_all_restarts_every_child_and_keeps_their_mailboxes(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, n) for n in "abc"], Strategy.ONE_FOR_ALL)
    hold = Hold()
    async with anyio.create_task_group() as tg:
        in_hand = ask_soon(tg, system.ref("/b"), hold)
        await hold.gate.entered.wait()
        queued = ask_soon(tg, system.ref("/b"), Echo("queued"))
        await settle()

        system.ref("/a").tell(Crash())

    # The sibling's message in hand was interrupted; what was queued behind
    # it went to the sibling's next instance.
    assert isinstance(in_hand.error, ActorCrashed)
    assert queued.reply == "queued"
    assert tree.of("/b") == ["start", hold, "stop", "restart", Echo("queued")]
    assert tree.hooks("/a") == tree.hooks("/c") == ["start", "stop", "restart"]
    [cause] = tree.causes["/b"]
    assert isinstance(cause, ActorCrashed)
    assert "restarted with /a" in str(cause)
    assert isinstance(tree.causes["/a"][0], RuntimeError)


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, n) for n in "abcd"], Strategy.REST_FOR_ONE)

    system.ref("/b").tell(Crash())
    await settle()

    assert tree.hooks("/a") == ["start"]
    for path in ("/b", "/c", "/d"):
        assert tree.hooks(path) == ["start", "stop", "restart"]


async def test_children_crashing_together_under_one_for_all_restart_once(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, n) for n in "abc"], Strategy.ONE_FOR_ALL)

    # Both reports are queued before the supervisor handles the first; the
    # restart it orders for everyone answers the second as well.
    system.ref("/a").tell(Crash())
    system.ref("/b").tell(Crash())
    await settle()

    for path in ("/a", "/b", "/c"):
        assert tree.hooks(path) == ["start", "stop", "restart"]
        assert system.cell(path).restarts == 1


async def test_a_crash_is_logged_with_the_child_and_the_error(
    system: ActorSystem, tree: Tree, logs: list[dict[str, Any]]
) -> None:
    await start_root(system, [spec(tree, "a")])

    system.ref("/a").tell(Crash("disk full"))
    await settle()

    [crash] = [entry for entry in logs if entry["event"] == "actor_crashed"]
    assert crash["actor"] == "/a"
    assert crash["kind"] == "Child"
    assert crash["error"] == "RuntimeError('disk full')"
    assert crash["log_level"] == "warning"


# Restart types.


async def test_a_permanent_child_is_restarted_after_stopping_on_its_own(
    system: ActorSystem, tree: Tree, logs: list[dict[str, Any]]
) -> None:
    await start_root(system, [spec(tree, "a")])
    old = system.ref("/a")

    assert await old.ask(Quit()) == "bye"
    await settle()

    # A stopped cell is gone for good: a new one takes the path.
    new = system.ref("/a")
    assert new is not old
    assert not old.alive
    assert await new.ask(Bump()) == 1
    assert tree.hooks("/a") == ["start", "stop", "start"]
    assert any(entry["event"] == "actor_restarting_after_stop" for entry in logs)


async def test_a_transient_child_is_restarted_after_a_crash(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a", RestartType.TRANSIENT)])

    system.ref("/a").tell(Crash())
    await settle()

    assert tree.hooks("/a") == ["start", "stop", "restart"]
    assert system.cell("/a").status is Status.RUNNING


async def test_a_transient_child_that_stops_on_its_own_stays_stopped(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a", RestartType.TRANSIENT)])

    await system.ref("/a").ask(Quit())
    await settle()

    assert system.find("/a") is None
    assert tree.hooks("/a") == ["start", "stop"]


@pytest.mark.parametrize("end", ["crash", "quit"])
async def test_a_temporary_child_is_never_restarted(
    system: ActorSystem, tree: Tree, end: str
) -> None:
    await start_root(system, [spec(tree, "a", RestartType.TEMPORARY)])

    system.ref("/a").tell(Crash() if end == "crash" else Quit())
    await settle()

    assert system.find("/a") is None
    assert tree.hooks("/a") == ["start", "stop"]


async def test_a_temporary_child_that_crashes_fails_its_queued_asks(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a", RestartType.TEMPORARY)])
    a = system.ref("/a")
    hold = Hold()
    async with anyio.create_task_group() as tg:
        in_hand = ask_soon(tg, a, hold)
        await hold.gate.entered.wait()
        queued = ask_soon(tg, a, Echo("queued"))
        await settle()

        system.kill("/a")

    assert isinstance(in_hand.error, ActorCrashed)
    assert isinstance(queued.error, ActorStopped)


# Intensity and escalation.


async def test_a_nested_supervisor_past_its_budget_is_restarted_by_its_parent(
    system: ActorSystem, tree: Tree, logs: list[dict[str, Any]]
) -> None:
    def sub() -> Supervisor:
        return Supervisor(
            [spec(tree, "x"), spec(tree, "y")],
            intensity=Intensity(max_restarts=2, within=60.0),
            backoff=NO_DELAY,
        )

    await start_root(system, [ChildSpec("sub", sub)])
    x, y = system.ref("/sub/x"), system.ref("/sub/y")
    y.tell(Bump())
    for _ in range(3):
        with pytest.raises(ActorCrashed):
            await x.ask(Crash())
        await settle()

    # The third crash spent /sub's budget: /sub failed, the root restarted it,
    # and the new /sub restarted its children where they were.
    sub_cell = system.cell("/sub")
    assert sub_cell.restarts == 1
    assert sub_cell.last_failure is not None
    assert sub_cell.last_failure.type == "RestartIntensityExceeded"
    assert system.ref("/sub/x") is x
    assert system.ref("/sub/y") is y
    assert tree.hooks("/sub/y") == ["start", "stop", "restart"]
    assert await y.ask(Bump()) == 1
    assert await x.ask(Echo("x is back")) == "x is back"
    escalations = [e for e in logs if e["event"] == "supervisor_escalating"]
    assert [e["actor"] for e in escalations] == ["/sub"]

    # The new instance has a fresh budget.
    with pytest.raises(ActorCrashed):
        await x.ask(Crash())
    await settle()
    assert system.cell("/sub").restarts == 1


async def test_a_crash_reported_before_an_escalation_is_not_restarted_twice(
    system: ActorSystem, tree: Tree
) -> None:
    def sub() -> Supervisor:
        return Supervisor(
            [spec(tree, "x"), spec(tree, "y")],
            intensity=Intensity(max_restarts=1, within=60.0),
            backoff=NO_DELAY,
        )

    await start_root(system, [ChildSpec("sub", sub)])
    system.ref("/sub/x").tell(Crash())
    await settle()

    # x's second crash makes /sub escalate while y's report waits behind it;
    # the new /sub restarts y as it adopts it, and the old report is stale.
    system.ref("/sub/x").tell(Crash())
    system.ref("/sub/y").tell(Crash())
    await settle()

    assert system.cell("/sub").restarts == 1
    assert tree.hooks("/sub/y") == ["start", "stop", "restart"]
    assert system.cell("/sub/y").restarts == 1


async def test_escalation_carries_the_intensity_error_to_the_parent(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(
        system,
        [
            ChildSpec(
                "sub",
                lambda: Supervisor(
                    [spec(tree, "x")], intensity=Intensity(0, 60.0), backoff=NO_DELAY
                ),
            )
        ],
    )

    system.ref("/sub/x").tell(Crash())
    await settle()

    [cause] = tree.causes["/sub/x"]
    assert "supervisor restarted" in str(cause)
    assert "RestartIntensityExceeded" in str(cause)


async def test_restarts_spread_over_more_than_the_window_do_not_escalate(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(
        system, [spec(tree, "a")], intensity=Intensity(max_restarts=1, within=0.02)
    )
    a = system.ref("/a")
    for _ in range(3):
        a.tell(Crash())
        await settle()
        # Let the window pass before the next crash.
        start = anyio.current_time()
        while anyio.current_time() - start <= 0.02:
            await anyio.sleep(0.01)

    assert system.cell("/").restarts == 0
    assert system.cell("/a").restarts == 3


# Backoff.


async def test_a_restart_waits_at_least_the_backoff_delay(
    system: ActorSystem, tree: Tree
) -> None:
    backoff = Backoff(initial=0.03, maximum=1.0, multiplier=2.0, jitter=0.0)
    await start_root(system, [spec(tree, "a")], backoff=backoff)
    a = system.ref("/a")
    resolution = time.get_clock_info("monotonic").resolution

    gaps = []
    for _ in range(2):
        crashed_at = anyio.current_time()
        with pytest.raises(ActorCrashed):
            await a.ask(Crash())
        await a.ask(Echo("waits for the restart"))
        gaps.append(tree.times["/a"][-2] - crashed_at)

    # The first restart waits the initial delay; the second, twice that.
    assert gaps[0] >= 0.03 - resolution
    assert gaps[1] >= 0.06 - resolution
    assert tree.hooks("/a") == ["start", "stop", "restart", "stop", "restart"]


async def test_a_child_waiting_out_its_backoff_shows_restarting(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a")], backoff=Backoff(initial=60.0))

    system.ref("/a").tell(Crash())
    await settle()

    assert system.cell("/a").status is Status.RESTARTING
    assert system.snapshot("/a").status == "restarting"


# Children started and stopped at run time.


async def test_start_child_spawns_a_child_and_returns_its_ref(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [])

    ref = await system.ref("/").ask(StartChild(spec(tree, "late")))

    assert ref is system.ref("/late")
    assert await ref.ask(Echo("hi")) == "hi"
    with pytest.raises(ActorExists):
        await system.ref("/").ask(StartChild(spec(tree, "late")))


async def test_stop_child_stops_it_for_good(system: ActorSystem, tree: Tree) -> None:
    await start_root(system, [spec(tree, "a")])

    await system.ref("/").ask(StopChild("a"))
    await settle()

    assert system.find("/a") is None
    assert tree.hooks("/a") == ["start", "stop"]
    assert await system.ref("/").ask(StopChild("a")) is None


async def test_a_supervisor_refuses_messages_it_does_not_know(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a")])

    with pytest.raises(ActorError, match="Supervisor got str"):
        await system.ref("/").ask("hello")

    assert system.cell("/").restarts == 0


async def test_the_supervisor_repr_shows_strategy_and_children(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, "a"), spec(tree, "b")], Strategy.ONE_FOR_ALL)

    assert repr(system.cell("/").instance) == "<Supervisor / one_for_all children=2>"


# Stopping.


async def test_leaving_the_system_restarts_nothing(tree: Tree) -> None:
    async with ActorSystem() as system:
        await start_root(system, [spec(tree, n) for n in "ab"])

    assert tree.hooks("/a") == tree.hooks("/b") == ["start", "stop"]
    assert len(system) == 0


async def test_the_intensity_error_names_the_supervisor_and_the_last_child(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(
        system,
        [
            ChildSpec(
                "sub",
                lambda: Supervisor(
                    [spec(tree, "x")], intensity=Intensity(0, 5.0), backoff=NO_DELAY
                ),
            )
        ],
    )

    system.ref("/sub/x").tell(Crash())
    await settle()

    failure = system.cell("/sub").last_failure
    assert failure is not None
    assert failure.type == RestartIntensityExceeded.__name__
    assert failure.message == "/sub: more than 0 restarts in 5s, last /sub/x"


def nested(tree: Tree, restart: RestartType = RestartType.PERMANENT) -> ChildSpec:
    """A supervisor /sub with children /sub/x and /sub/y."""
    return ChildSpec(
        "sub",
        lambda: Supervisor([spec(tree, "x"), spec(tree, "y")], backoff=NO_DELAY),
        restart=restart,
    )


async def test_stopping_a_supervisor_stops_its_children_before_it_ends(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [nested(tree)])
    sub = system.cell("/sub")

    await system.ref("/").ask(StopChild("sub"))

    assert sub.status is Status.STOPPED
    assert [c.path for c in system.cells()] == ["/"]
    assert tree.hooks("/sub/x") == tree.hooks("/sub/y") == ["start", "stop"]


async def test_leaving_the_system_stops_children_before_their_supervisor(
    tree: Tree,
) -> None:
    class Noted(Supervisor):
        async def on_stop(self) -> None:
            await super().on_stop()
            tree.note(self.context.path, "stop")

    async with ActorSystem() as system:
        await start_root(system, [ChildSpec("sub", lambda: Noted([spec(tree, "x")]))])

    stops = [path for path, what in tree.events if what == "stop"]
    assert stops == ["/sub/x", "/sub"]


async def test_a_permanent_supervisor_that_stops_comes_back_with_its_children(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [nested(tree)])

    system.cell("/sub").stop()
    await settle()

    assert system.cell("/sub").status is Status.RUNNING
    assert system.cell("/").restarts == 0
    assert tree.hooks("/sub/x") == ["start", "stop", "start"]
    assert await system.ref("/sub/y").ask(Echo("y")) == "y"


async def test_children_started_at_run_time_are_kept_across_a_supervisor_restart(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [nested(tree)])
    late = await system.ref("/sub").ask(
        StartChild(spec(tree, "late", RestartType.TRANSIENT))
    )

    system.kill("/sub")
    await settle()
    # Still supervised: a crash is restarted, the ref stays.
    late.tell(Crash())
    await settle()

    assert system.ref("/sub/late") is late
    assert tree.hooks("/sub/late") == ["start", "stop", "restart", "stop", "restart"]
    assert await late.ask(Echo("late")) == "late"


async def test_a_child_back_from_stopping_keeps_its_place_for_rest_for_one(
    system: ActorSystem, tree: Tree
) -> None:
    await start_root(system, [spec(tree, n) for n in "abc"], Strategy.REST_FOR_ONE)
    await system.ref("/a").ask(Quit())
    await settle()

    system.ref("/b").tell(Crash())
    await settle()

    # /a was started first: a crash of /b does not restart it.
    assert tree.hooks("/a") == ["start", "stop", "start"]
    assert tree.hooks("/c") == ["start", "stop", "restart"]
