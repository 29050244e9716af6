"""Refs: tell, ask, and what a sender learns when things go wrong."""

from __future__ import annotations

import anyio
import pytest
from actor_helpers import (
    Bump,
    Crash,
    Echo,
    Hold,
    Journal,
    RecordingParent,
    Refuse,
    ask_soon,
    settle,
    start_worker,
)

from livegame.actors import (
    ActorCrashed,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    MailboxStatistics,
)
from livegame.errors import BadRequest

pytestmark = pytest.mark.anyio


async def test_ask_returns_the_reply(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    assert await cell.ref.ask(Echo("pong")) == "pong"


async def test_tells_are_handled_in_order(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    for value in range(5):
        cell.ref.tell(Echo(value))
    await settle()

    assert journal.messages() == [Echo(value) for value in range(5)]


async def test_an_ask_with_no_reply_in_time_raises_ask_timeout(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()

    with pytest.raises(AskTimeout) as raised:
        await cell.ref.ask(hold, timeout=0.01)

    assert str(raised.value) == "no reply from /worker within 0.01s"
    assert raised.value.code == "timeout"
    hold.gate.open()


async def test_a_reply_after_the_timeout_is_ignored(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    with pytest.raises(AskTimeout):
        await cell.ref.ask(hold, timeout=0.01)

    hold.gate.open()
    await settle()

    assert await cell.ref.ask(Bump()) == 1
    assert cell.processed == 2
    assert parent.failures == []


async def test_an_asker_that_gives_up_does_not_disturb_the_actor(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    async with anyio.create_task_group() as tg:
        outcome = ask_soon(tg, cell.ref, hold)
        await hold.gate.entered.wait()
        tg.cancel_scope.cancel()

    hold.gate.open()
    await settle()

    # The asker was cancelled: it got neither a reply nor an error.
    assert outcome.reply is None
    assert outcome.error is None
    assert await cell.ref.ask(Echo("still here")) == "still here"


async def test_a_refusal_goes_to_the_asker_and_the_actor_keeps_its_state(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    await cell.ref.ask(Bump())
    await cell.ref.ask(Bump())

    with pytest.raises(BadRequest, match="not now"):
        await cell.ref.ask(Refuse())

    assert await cell.ref.ask(Bump()) == 3
    assert cell.restarts == 0
    assert parent.failures == []


async def test_a_crash_gives_the_asker_actor_crashed_with_the_cause(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    with pytest.raises(ActorCrashed) as raised:
        await cell.ref.ask(Crash("disk on fire"))

    assert "/worker crashed handling Crash" in str(raised.value)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert str(raised.value.__cause__) == "disk on fire"
    assert raised.value.context == {"actor": "/worker"}


async def test_a_crash_on_a_tell_is_reported_to_the_parent(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    cell.ref.tell(Crash("unseen by anyone else"))
    await settle()

    [(path, error)] = parent.failures
    assert path == "/worker"
    assert isinstance(error, RuntimeError)
    assert cell.restarts == 1


async def test_the_ref_stays_valid_across_restarts(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    ref = cell.ref
    await ref.ask(Bump())

    with pytest.raises(ActorCrashed):
        await ref.ask(Crash())

    # A new instance: the count starts over, the ref and mailbox are the same.
    assert await ref.ask(Bump()) == 1
    assert system.ref("/worker") is ref
    assert ref.alive
    assert journal.incarnations == 2


async def test_a_tell_to_a_stopped_actor_raises_actor_stopped(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    ref = cell.ref
    cell.stop()
    await cell.wait_stopped()

    with pytest.raises(ActorStopped, match="/worker has stopped"):
        ref.tell(Bump())
    with pytest.raises(ActorStopped):
        await ref.ask(Bump())
    assert not ref.alive


async def test_a_stopping_actor_refuses_new_messages_at_once(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)

    cell.stop()

    with pytest.raises(ActorStopped):
        cell.ref.tell(Bump())
    await cell.wait_stopped()


async def test_stop_replies_to_the_message_in_hand_and_fails_queued_asks(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    async with anyio.create_task_group() as tg:
        in_hand = ask_soon(tg, cell.ref, hold)
        await hold.gate.entered.wait()
        queued = [ask_soon(tg, cell.ref, Bump()) for _ in range(3)]
        await settle()

        cell.stop()
        hold.gate.open()

    assert in_hand.reply == "released"
    for outcome in queued:
        assert isinstance(outcome.error, ActorStopped)
    assert journal.messages() == [hold]
    assert parent.stopped == ["/worker"]


async def test_statistics_show_the_mailbox(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent, capacity=8)
    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()
    cell.ref.tell(Bump())

    assert cell.ref.statistics() == MailboxStatistics(depth=1, capacity=8, rejected=0)
    hold.gate.open()


async def test_repr_names_the_path(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent, path="/user/w1")

    ref: ActorRef[object] = cell.ref
    assert repr(ref) == "<ActorRef /user/w1>"
