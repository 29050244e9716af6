"""The bounded mailbox, alone and behind a live actor."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import anyio
import pytest
import structlog
from actor_helpers import (
    Bump,
    Crash,
    Echo,
    Hold,
    Journal,
    RecordingParent,
    settle,
    start_worker,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from livegame.actors import (
    Actor,
    ActorCell,
    ActorCrashed,
    ActorKilled,
    ActorSystem,
    Mailbox,
    MailboxFull,
    MailboxStatistics,
)
from livegame.errors import Overloaded
from livegame.supervisor import Backoff, ChildSpec, Intensity, Supervisor, spawn_root

pytestmark = pytest.mark.anyio


# The mailbox on its own.


def test_items_come_out_in_the_order_they_went_in() -> None:
    mailbox: Mailbox[int] = Mailbox(8)
    for item in range(5):
        mailbox.put_nowait(item)

    assert [mailbox.get_nowait() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_a_full_mailbox_raises_mailbox_full_and_queues_nothing() -> None:
    mailbox: Mailbox[str] = Mailbox(2)
    mailbox.put_nowait("a")
    mailbox.put_nowait("b")

    with pytest.raises(MailboxFull) as raised:
        mailbox.put_nowait("c")

    assert list(mailbox) == ["a", "b"]
    assert raised.value.context == {"capacity": 2}
    assert isinstance(raised.value, Overloaded)
    assert raised.value.status == 503


def test_every_refusal_is_counted() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    mailbox.put_nowait(0)
    for item in range(3):
        with pytest.raises(MailboxFull):
            mailbox.put_nowait(item)

    assert mailbox.rejected == 3


def test_room_freed_by_a_get_takes_the_next_item() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    mailbox.put_nowait(1)
    assert mailbox.get_nowait() == 1

    mailbox.put_nowait(2)

    assert list(mailbox) == [2]
    assert mailbox.rejected == 0


def test_system_items_go_past_the_bound() -> None:
    mailbox: Mailbox[str] = Mailbox(1)
    mailbox.put_nowait("user")

    mailbox.put_system("runtime")

    assert list(mailbox) == ["user", "runtime"]
    with pytest.raises(MailboxFull):
        mailbox.put_nowait("more")


def test_statistics_show_depth_capacity_and_rejections() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    mailbox.put_nowait(1)
    mailbox.put_nowait(2)
    with pytest.raises(MailboxFull):
        mailbox.put_nowait(3)

    assert mailbox.statistics() == MailboxStatistics(depth=2, capacity=2, rejected=1)


def test_statistics_are_a_frozen_snapshot() -> None:
    mailbox: Mailbox[int] = Mailbox(4)
    before = mailbox.statistics()
    mailbox.put_nowait(1)

    assert before.depth == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.depth = 3  # type: ignore[misc]


def test_drain_returns_everything_oldest_first_and_empties() -> None:
    mailbox: Mailbox[int] = Mailbox(4)
    for item in (3, 1, 2):
        mailbox.put_nowait(item)

    assert mailbox.drain() == [3, 1, 2]
    assert len(mailbox) == 0


def test_getting_from_an_empty_mailbox_raises_index_error() -> None:
    with pytest.raises(IndexError):
        Mailbox[int](1).get_nowait()


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        Mailbox[int](capacity)


def test_repr_shows_depth_and_capacity() -> None:
    mailbox: Mailbox[int] = Mailbox(64)
    for item in range(3):
        mailbox.put_nowait(item)

    assert repr(mailbox) == "<Mailbox 3/64>"


# The mailbox behind a live actor.


async def test_a_tell_to_a_full_mailbox_raises_and_queues_nothing(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent, capacity=2)
    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()
    cell.ref.tell(Bump())
    cell.ref.tell(Bump())

    with pytest.raises(MailboxFull):
        cell.ref.tell(Bump())
    with pytest.raises(MailboxFull):
        await cell.ref.ask(Bump())

    assert cell.ref.statistics() == MailboxStatistics(depth=2, capacity=2, rejected=2)
    hold.gate.open()
    await settle()
    assert journal.messages() == [hold, Bump(), Bump()]
    assert cell.processed == 3


async def test_queued_messages_wait_out_a_restart_in_order(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent)
    hold = Hold()
    cell.ref.tell(hold)
    await hold.gate.entered.wait()
    queued = [Echo(0), Echo(1), Crash(), Echo(2)]
    for message in queued:
        cell.ref.tell(message)

    cell.restart(0.0)
    await settle()

    assert journal.handled == [
        (1, hold),
        (2, Echo(0)),
        (2, Echo(1)),
        (2, Crash()),
        (3, Echo(2)),
    ]


# Any schedule of tells, asks, crashes, kills and restarts.

CAPACITY = 4

OPERATIONS = ("tell", "ask", "finish", "crash", "kill", "restart")


class _Controller:
    """Parks each message of a _Step actor until the schedule says how it ends."""

    def __init__(self) -> None:
        self.incarnations = 0
        self.entered: list[tuple[int, int]] = []
        self.in_hand: anyio.Event | None = None
        self.crash_next = False


class _Step(Actor[int]):
    def __init__(self, controller: _Controller) -> None:
        controller.incarnations += 1
        self.controller = controller
        self.incarnation = controller.incarnations

    async def receive(self, message: int) -> Any:
        controller = self.controller
        controller.entered.append((self.incarnation, message))
        released = controller.in_hand = anyio.Event()
        try:
            await released.wait()
        finally:
            controller.in_hand = None
        if controller.crash_next:
            controller.crash_next = False
            raise RuntimeError(f"crash on {message}")

        return message


class _Model:
    """What the schedule must produce, computed without the runtime."""

    def __init__(self) -> None:
        self.incarnation = 1
        self.queue: deque[int] = deque()
        self.in_hand: int | None = None
        self.entered: list[tuple[int, int]] = []
        self.replied: set[int] = set()
        # Message number -> the type of error that interrupted it.
        self.interrupted: dict[int, type[BaseException]] = {}
        self.rejected: set[int] = set()

    def send(self, number: int) -> None:
        if len(self.queue) >= CAPACITY:
            self.rejected.add(number)
        else:
            self.queue.append(number)

    def end_in_hand(self, cause: type[BaseException] | None) -> None:
        if self.in_hand is None:
            return
        if cause is None:
            self.replied.add(self.in_hand)
        else:
            self.interrupted[self.in_hand] = cause
        self.in_hand = None

    def advance(self) -> None:
        if self.in_hand is None and self.queue:
            self.in_hand = self.queue.popleft()
            self.entered.append((self.incarnation, self.in_hand))


async def _ask(ref: Any, number: int, outcomes: dict[int, object]) -> None:
    try:
        outcomes[number] = await ref.ask(number)
    except Exception as exc:
        outcomes[number] = exc


async def _start_step(
    system: ActorSystem, controller: _Controller, supervised: bool
) -> ActorCell[int]:
    """Start the _Step actor under a bare parent or under a real supervisor."""
    if not supervised:
        cell = system.spawn(
            lambda: _Step(controller),
            "/step",
            parent=RecordingParent(),
            capacity=CAPACITY,
        )
    else:
        spec = ChildSpec("step", lambda: _Step(controller), capacity=CAPACITY)
        await spawn_root(
            system,
            lambda: Supervisor(
                [spec],
                intensity=Intensity(max_restarts=1000, within=60.0),
                backoff=Backoff(initial=0.0, jitter=0.0),
            ),
        )
        cell = system.cell("/step")
    await cell.wait_started()

    return cell


async def _run_schedule(operations: list[str], supervised: bool) -> None:
    controller = _Controller()
    model = _Model()
    outcomes: dict[int, object] = {}
    asked: set[int] = set()
    told_and_refused: set[int] = set()

    async with ActorSystem("schedule") as system, anyio.create_task_group() as tg:
        cell = await _start_step(system, controller, supervised)

        def release(crash: bool) -> None:
            if controller.in_hand is not None:
                controller.crash_next = crash
                controller.in_hand.set()

        for number, operation in enumerate(operations):
            if operation == "tell":
                model.send(number)
                try:
                    cell.ref.tell(number)
                except MailboxFull:
                    told_and_refused.add(number)
            elif operation == "ask":
                model.send(number)
                asked.add(number)
                tg.start_soon(_ask, cell.ref, number, outcomes)
            elif operation == "finish":
                model.end_in_hand(None)
                release(crash=False)
            elif operation == "crash":
                if model.in_hand is not None:
                    model.incarnation += 1
                model.end_in_hand(RuntimeError)
                release(crash=True)
            elif operation == "kill":
                model.incarnation += 1
                model.end_in_hand(ActorKilled)
                cell.kill()
            else:
                model.incarnation += 1
                model.end_in_hand(ActorCrashed)
                cell.restart(0.0)
            await settle()
            model.advance()

        # Let everything still queued through, as the model and as the actor
        # see it, so that a wrong actor fails the checks below, not hangs.
        while model.in_hand is not None:
            model.end_in_hand(None)
            model.advance()
        while controller.in_hand is not None:
            release(crash=False)
            await settle()

    # Every accepted message entered receive exactly once, in the order sent,
    # in the incarnation the model expects: none lost, none handled twice.
    assert controller.entered == model.entered
    assert told_and_refused == model.rejected - asked
    assert cell.mailbox.rejected == len(model.rejected)
    for number in asked:
        outcome = outcomes[number]
        if number in model.rejected:
            assert isinstance(outcome, MailboxFull)
        elif number in model.interrupted:
            # The message in hand at a crash, kill or restart: its asker hears.
            assert isinstance(outcome, ActorCrashed)
            assert isinstance(outcome.__cause__, model.interrupted[number])
        else:
            assert outcome == number
    assert cell.restarts == model.incarnation - 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(OPERATIONS), max_size=40), st.booleans())
async def test_no_schedule_loses_a_message_or_handles_one_twice(
    operations: list[str], supervised: bool
) -> None:
    """Under a bare parent or a supervisor, every accepted message is handled once."""
    with structlog.testing.capture_logs():
        await _run_schedule(operations, supervised)
