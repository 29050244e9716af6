"""Timers: messages an actor sends itself later, and when they are cancelled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from actor_helpers import Gate, RecordingParent, settle

from livegame.actors import Actor, ActorCell, ActorSystem, Status

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Arm:
    key: str
    delay: float
    message: str
    periodic: bool = False


@dataclass(frozen=True)
class Disarm:
    key: str


@dataclass(frozen=True)
class Park:
    gate: Gate


class Inbox:
    """The timer messages a Ticker received, with a way to wait for more."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._arrived = anyio.Event()

    def add(self, message: str) -> None:
        self.received.append(message)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, message: str, count: int = 1) -> None:
        with anyio.fail_after(2):
            while self.received.count(message) < count:
                await self._arrived.wait()


class Ticker(Actor[Any]):
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def on_restart(self, error: BaseException) -> None:
        # Unlike on_start by default, arms nothing: the old timers must be gone.
        pass

    async def receive(self, message: Any) -> Any:
        timers = self.context.timers
        if isinstance(message, Arm):
            if message.periodic:
                timers.start_periodic(message.key, message.delay, message.message)
            else:
                timers.start_once(message.key, message.delay, message.message)
        elif isinstance(message, Disarm):
            timers.cancel(message.key)
        elif isinstance(message, Park):
            message.gate.entered.set()
            await message.gate.opened.wait()
        elif message == "crash":
            raise RuntimeError("crash")
        else:
            self.inbox.add(message)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def ticker(
    system: ActorSystem, inbox: Inbox, parent: RecordingParent
) -> ActorCell[Any]:
    cell = system.spawn(lambda: Ticker(inbox), "/ticker", parent=parent, capacity=8)
    await cell.wait_started()

    return cell


async def wait_past(delay: float) -> None:
    """Wait until the event loop has run every timer due within ``delay``."""
    # Timers fire in the order they are due, so one due later has all
    # earlier ones behind it.
    passed = anyio.Event()
    asyncio.get_running_loop().call_later(delay, passed.set)
    await passed.wait()
    await settle()


async def test_a_once_timer_sends_its_message_once(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    await ticker.ref.ask(Arm("reminder", 0.01, "tick"))
    assert "reminder" in ticker.timers

    await inbox.wait_for("tick")
    await ticker.ref.ask(Arm("probe", 0.03, "probe"))
    await inbox.wait_for("probe")

    assert inbox.received == ["tick", "probe"]
    assert "reminder" not in ticker.timers


async def test_a_periodic_timer_keeps_sending_until_cancelled(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    await ticker.ref.ask(Arm("heartbeat", 0.005, "beat", periodic=True))

    await inbox.wait_for("beat", count=3)
    assert "heartbeat" in ticker.timers

    await ticker.ref.ask(Disarm("heartbeat"))
    beats = inbox.received.count("beat")
    await wait_past(0.03)
    assert inbox.received.count("beat") == beats
    assert "heartbeat" not in ticker.timers


async def test_a_cancelled_timer_never_fires(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    await ticker.ref.ask(Arm("reminder", 0.01, "tick"))
    await ticker.ref.ask(Disarm("reminder"))

    await ticker.ref.ask(Arm("probe", 0.03, "probe"))
    await inbox.wait_for("probe")

    assert inbox.received == ["probe"]


async def test_cancelling_an_unknown_key_does_nothing(ticker: ActorCell[Any]) -> None:
    await ticker.ref.ask(Disarm("never armed"))

    assert ticker.status is Status.RUNNING


async def test_a_timer_armed_again_under_its_key_replaces_the_old_one(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    await ticker.ref.ask(Arm("reminder", 0.01, "first"))
    await ticker.ref.ask(Arm("reminder", 0.02, "second"))

    await ticker.ref.ask(Arm("probe", 0.04, "probe"))
    await inbox.wait_for("probe")

    assert inbox.received == ["second", "probe"]


async def test_a_periodic_interval_must_be_positive(ticker: ActorCell[Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        ticker.timers.start_periodic("bad", 0.0, "never")


async def test_timers_are_cancelled_when_the_actor_crashes(
    system: ActorSystem, inbox: Inbox
) -> None:
    parent = RecordingParent(restart=False)
    cell = system.spawn(lambda: Ticker(inbox), "/ticker", parent=parent, capacity=8)
    cell.ref.tell(Arm("heartbeat", 0.005, "beat", periodic=True))
    cell.ref.tell("crash")
    await settle()

    assert cell.status is Status.FAILED
    assert "heartbeat" not in cell.timers
    await wait_past(0.02)
    assert len(cell.mailbox) == 0


async def test_timers_are_cancelled_on_restart(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    # Arm and crash in one batch: no tick can be queued in between.
    ticker.ref.tell(Arm("heartbeat", 0.005, "beat", periodic=True))
    ticker.ref.tell("crash")
    await settle()
    assert ticker.restarts == 1

    await ticker.ref.ask(Arm("probe", 0.03, "probe"))
    await inbox.wait_for("probe")

    assert inbox.received == ["probe"]
    assert "heartbeat" not in ticker.timers


async def test_timers_are_cancelled_when_the_actor_stops(
    ticker: ActorCell[Any], logs: list[dict[str, Any]]
) -> None:
    await ticker.ref.ask(Arm("heartbeat", 0.005, "beat", periodic=True))

    ticker.stop()
    await ticker.wait_stopped()
    await wait_past(0.02)

    assert "heartbeat" not in ticker.timers
    assert [e for e in logs if e["event"] == "timer_message_dropped"] == []


async def test_a_tick_that_finds_the_mailbox_full_is_dropped_with_a_warning(
    system: ActorSystem, inbox: Inbox, parent: RecordingParent, logs: list[Any]
) -> None:
    cell = system.spawn(lambda: Ticker(inbox), "/ticker", parent=parent, capacity=1)
    park = Park(Gate())
    cell.ref.tell(park)
    await park.gate.entered.wait()
    cell.ref.tell("fills the mailbox")
    cell.timers.start_once("reminder", 0.0, "tick")

    await wait_past(0.01)
    park.gate.open()
    await settle()

    assert inbox.received == ["fills the mailbox"]
    assert {
        "event": "timer_message_dropped",
        "actor": "/ticker",
        "timer": "reminder",
        "reason": "overloaded",
        "log_level": "warning",
    } in logs


async def test_a_negative_delay_fires_at_once(
    ticker: ActorCell[Any], inbox: Inbox
) -> None:
    ticker.timers.start_once("late", -1.0, "tick")

    await inbox.wait_for("tick")


async def test_repr_counts_active_timers(ticker: ActorCell[Any]) -> None:
    ticker.timers.start_once("a", 10.0, "a")
    ticker.timers.start_periodic("b", 10.0, "b")

    assert repr(ticker.timers) == "<Timers /ticker active=2>"
    ticker.timers.cancel_all()
    assert repr(ticker.timers) == "<Timers /ticker active=0>"
