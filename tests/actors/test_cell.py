"""The cell: an actor's loop, its lifecycle hooks, kills and restarts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from actor_helpers import (
    Bump,
    Crash,
    Echo,
    Gate,
    Hold,
    Journal,
    RecordingParent,
    ask_soon,
    settle,
    start_worker,
)

from livegame.actors import (
    Actor,
    ActorCell,
    ActorCrashed,
    ActorKilled,
    ActorStopped,
    ActorSystem,
    Status,
)
from livegame.errors import GameNotFound

pytestmark = pytest.mark.anyio


# Kill by path.


async def test_killing_an_idle_actor_makes_the_next_message_meet_a_new_instance(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    await cell.ref.ask(Bump())

    system.kill("/worker")
    await settle()

    assert await cell.ref.ask(Bump()) == 1
    assert journal.handled[-1] == (2, Bump())
    [(path, error)] = parent.failures
    assert path == "/worker"
    assert isinstance(error, ActorKilled)
    assert cell.restarts == 1


async def test_killing_a_busy_actor_fails_the_message_in_hand(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    async with anyio.create_task_group() as tg:
        in_hand = ask_soon(tg, cell.ref, hold)
        await hold.gate.entered.wait()
        next_one = ask_soon(tg, cell.ref, Echo("next"))
        await settle()

        system.kill("/worker", reason="chaos")

    assert isinstance(in_hand.error, ActorCrashed)
    assert isinstance(in_hand.error.__cause__, ActorKilled)
    assert str(in_hand.error.__cause__) == "/worker chaos"
    assert next_one.reply == "next"
    assert journal.handled == [(1, hold), (2, Echo("next"))]
    # The interrupted instance was retired before the next one started.
    assert journal.hooks == [("start", 1), ("stop", 1), ("restart", 2)]


async def test_killing_a_busy_actor_twice_reports_one_crash(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()

    cell.kill()
    cell.kill()
    await settle()

    assert len(parent.failures) == 1
    assert cell.restarts == 1
    assert await cell.ref.ask(Echo("ok")) == "ok"


async def test_the_kill_is_logged_with_its_reason(
    system: ActorSystem,
    journal: Journal,
    parent: RecordingParent,
    logs: list[dict[str, Any]],
) -> None:
    await start_worker(system, journal, parent)

    system.kill("/worker", reason="chaos test")

    assert {
        "event": "actor_kill_requested",
        "actor": "/worker",
        "reason": "chaos test",
        "log_level": "warning",
    } in logs


async def test_killing_a_stopped_actor_raises_actor_stopped(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    cell.stop()

    with pytest.raises(ActorStopped):
        cell.kill()
    await cell.wait_stopped()


# Crashes and restarts.


async def test_a_crash_records_the_last_failure_and_restarts_through_the_parent(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    with pytest.raises(ActorCrashed):
        await cell.ref.ask(Crash("bad state"))

    assert cell.last_failure is not None
    assert (cell.last_failure.type, cell.last_failure.message) == (
        "RuntimeError",
        "bad state",
    )
    assert isinstance(journal.restart_causes[0], RuntimeError)
    assert cell.status is Status.RUNNING


async def test_a_crashed_actor_waits_for_its_parent_and_keeps_its_mail(
    system: ActorSystem, journal: Journal
) -> None:
    parent = RecordingParent(restart=False)
    cell = await start_worker(system, journal, parent)
    cell.ref.tell(Crash())
    cell.ref.tell(Echo("after"))
    await settle()

    assert cell.status is Status.FAILED
    assert len(cell.mailbox) == 1
    cell.ref.tell(Echo("queued while failed"))

    cell.restart(0.0, parent.failures[0][1])
    await settle()

    assert journal.handled[1:] == [(2, Echo("after")), (2, Echo("queued while failed"))]


async def test_a_failed_actor_awaits_a_decision_until_a_restart_is_ordered(
    system: ActorSystem, journal: Journal
) -> None:
    parent = RecordingParent(restart=False)
    cell = await start_worker(system, journal, parent)
    assert not cell.awaiting_decision

    cell.ref.tell(Crash())
    await settle()
    assert cell.awaiting_decision

    # Ordered but not yet carried out: a second report would be stale.
    cell.restart(0.0)
    assert not cell.awaiting_decision
    await settle()
    assert cell.status is Status.RUNNING
    assert not cell.awaiting_decision


async def test_a_restart_interrupts_the_message_in_hand(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    async with anyio.create_task_group() as tg:
        in_hand = ask_soon(tg, cell.ref, hold)
        await hold.gate.entered.wait()

        cell.restart(0.0)

    assert isinstance(in_hand.error, ActorCrashed)
    assert "restarted by its supervisor" in str(in_hand.error)
    # A restart ordered from above is not a crash of the actor's own.
    assert parent.failures == []
    assert cell.restarts == 1


async def test_stopping_during_a_restart_delay_stops_at_once(
    system: ActorSystem, journal: Journal
) -> None:
    parent = RecordingParent(delay=60.0)
    cell = await start_worker(system, journal, parent)
    cell.ref.tell(Crash())
    await settle()
    assert cell.status is Status.RESTARTING

    cell.stop()

    with anyio.fail_after(1):
        await cell.wait_stopped()
    assert journal.incarnations == 1


async def test_fail_from_the_context_crashes_after_the_message_in_hand(
    system: ActorSystem,
) -> None:
    parent = RecordingParent()

    class FailsLater(Actor[Any]):
        async def receive(self, message: Any) -> Any:
            self.context.fail(ValueError("found a broken invariant"))
            return "replied first"

    cell = system.spawn(FailsLater, "/later", parent=parent, capacity=4)

    assert await cell.ref.ask("go") == "replied first"
    await settle()
    [(_, error)] = parent.failures
    assert isinstance(error, ValueError)
    assert cell.restarts == 1


async def test_stop_self_replies_then_stops_and_fails_queued_asks(
    system: ActorSystem, parent: RecordingParent
) -> None:
    gate = Gate()

    class Quitter(Actor[Any]):
        async def receive(self, message: Any) -> Any:
            gate.entered.set()
            await gate.opened.wait()
            self.context.stop_self()
            return "bye"

    cell = system.spawn(Quitter, "/quitter", parent=parent, capacity=4)
    async with anyio.create_task_group() as tg:
        first = ask_soon(tg, cell.ref, "quit")
        await gate.entered.wait()
        second = ask_soon(tg, cell.ref, "too late")
        await settle()
        gate.open()

    assert first.reply == "bye"
    assert isinstance(second.error, ActorStopped)
    assert cell.status is Status.STOPPED
    assert parent.stopped == ["/quitter"]


# Starting.


async def test_a_failed_on_start_is_a_crash_and_the_next_instance_takes_the_mail(
    system: ActorSystem, parent: RecordingParent
) -> None:
    attempts: list[str] = []

    class Flaky(Actor[Any]):
        async def on_start(self) -> None:
            attempts.append("start")
            raise ConnectionError("database not up yet")

        async def on_restart(self, error: BaseException) -> None:
            attempts.append(f"restart after {type(error).__name__}")

        async def receive(self, message: Any) -> Any:
            return message

    cell = system.spawn(Flaky, "/flaky", parent=parent, capacity=4)
    cell.ref.tell("queued early")
    reply = await cell.ref.ask("asked early")
    await cell.wait_started()

    assert reply == "asked early"
    assert attempts == ["start", "restart after ConnectionError"]
    assert cell.restarts == 1
    assert cell.processed == 2
    assert cell.last_failure is not None
    assert cell.last_failure.type == "ConnectionError"


async def test_an_actor_that_refuses_to_start_stops_and_tells_its_waiters_why(
    system: ActorSystem, parent: RecordingParent
) -> None:
    class Unknown(Actor[Any]):
        async def on_start(self) -> None:
            raise GameNotFound("no game g404", game_id="g404")

        async def receive(self, message: Any) -> Any:
            return message

    cell: ActorCell[Any] = system.spawn(Unknown, "/g404", parent=parent, capacity=4)
    with pytest.raises(GameNotFound, match="no game g404"):
        await cell.ref.ask("hello")

    await cell.wait_started()
    await cell.wait_stopped()
    assert isinstance(cell.refusal, GameNotFound)
    assert cell.status is Status.STOPPED
    assert parent.failures == []
    assert parent.stopped == ["/g404"]
    assert system.find("/g404") is None
    with pytest.raises(ActorStopped):
        cell.ref.tell("again")


async def test_killing_an_actor_inside_on_start_restarts_it(
    system: ActorSystem, parent: RecordingParent
) -> None:
    gate = Gate()
    starts: list[int] = []

    class SlowStart(Actor[Any]):
        async def on_start(self) -> None:
            starts.append(len(starts))
            if len(starts) == 1:
                gate.entered.set()
                await gate.opened.wait()

        async def receive(self, message: Any) -> Any:
            return message

    cell = system.spawn(SlowStart, "/slow", parent=parent, capacity=4)
    await gate.entered.wait()

    cell.kill()
    await cell.wait_started()

    assert isinstance(parent.failures[0][1], ActorKilled)
    assert await cell.ref.ask("up") == "up"
    assert cell.restarts == 1


async def test_a_failing_on_stop_is_logged_and_the_restart_goes_on(
    system: ActorSystem, parent: RecordingParent, logs: list[dict[str, Any]]
) -> None:
    class BadStop(Actor[Any]):
        async def on_stop(self) -> None:
            raise OSError("socket already closed")

        async def receive(self, message: Any) -> Any:
            if message == "crash":
                raise RuntimeError(message)
            return message

    cell = system.spawn(BadStop, "/badstop", parent=parent, capacity=4)
    cell.ref.tell("crash")

    assert await cell.ref.ask("after") == "after"
    failed = [entry for entry in logs if entry["event"] == "actor_stop_hook_failed"]
    assert failed[0]["actor"] == "/badstop"
    assert "socket already closed" in failed[0]["error"]


# State as others see it.


async def test_idle_means_running_with_nothing_queued_or_in_hand(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    assert cell.idle

    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()
    assert not cell.idle

    hold.gate.open()
    await settle()
    assert cell.idle


async def test_repr_shows_kind_path_status_and_mailbox(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent, path="/user/w", capacity=64)
    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()
    for _ in range(3):
        cell.ref.tell(Bump())

    assert repr(cell) == "<Worker /user/w running mailbox=3/64>"
    assert repr(cell.instance) == "<Worker /user/w>"
    hold.gate.open()


async def test_the_context_tells_an_instance_where_it_is(
    system: ActorSystem, parent: RecordingParent
) -> None:
    seen: dict[str, object] = {}

    class Curious(Actor[Any]):
        async def receive(self, message: Any) -> Any:
            context = self.context
            seen.update(
                path=context.path,
                ref=context.self_ref,
                system=context.system,
                restarts=context.restarts,
                shutting_down=context.shutting_down,
            )

    cell = system.spawn(Curious, "/curious", parent=parent, capacity=4)
    await cell.ref.ask("where am I")

    assert seen == {
        "path": "/curious",
        "ref": cell.ref,
        "system": system,
        "restarts": 0,
        "shutting_down": False,
    }
