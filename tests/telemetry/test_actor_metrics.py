"""The actor runtime counts messages processed, restarts and full mailboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from livegame.actors import Actor, ActorCell, ActorSystem, MailboxFull
from livegame.telemetry import metrics

pytestmark = pytest.mark.anyio


class MeteredWorker(Actor[str]):
    """Replies "ok"; "crash" raises; "hold" parks until the gate opens."""

    gate: anyio.Event

    async def receive(self, message: str) -> str:
        if message == "crash":
            raise RuntimeError("crash asked for")
        if message == "hold":
            await MeteredWorker.gate.wait()

        return "ok"


class Restarter:
    """A parent that restarts a crashed child at once."""

    def child_failed(self, child: ActorCell[Any], error: BaseException) -> None:
        child.restart(0.0, error)

    def child_stopped(self, child: ActorCell[Any]) -> None:
        pass


def count(name: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, {"kind": "MeteredWorker"})

    return value or 0.0


@pytest.fixture
async def worker() -> AsyncIterator[ActorCell[str]]:
    MeteredWorker.gate = anyio.Event()
    async with ActorSystem("metrics") as system:
        cell = system.spawn(MeteredWorker, "/worker", parent=Restarter(), capacity=3)
        await cell.wait_started()
        try:
            yield cell
        finally:
            MeteredWorker.gate.set()


async def test_every_processed_message_is_counted(worker: ActorCell[str]) -> None:
    before = count("live_game_actor_messages_processed_total")

    for _ in range(2):
        worker.ref.tell("tell")
    assert await worker.ref.ask("ask") == "ok"

    assert count("live_game_actor_messages_processed_total") == before + 3


async def test_a_restart_is_counted(worker: ActorCell[str]) -> None:
    before = count("live_game_actor_restarts_total")

    worker.ref.tell("crash")
    with anyio.fail_after(5):
        while worker.restarts == 0:
            await anyio.lowlevel.checkpoint()

    assert count("live_game_actor_restarts_total") == before + 1


async def test_a_tell_and_an_ask_refused_by_a_full_mailbox_are_counted(
    worker: ActorCell[str],
) -> None:
    before = count("live_game_actor_mailbox_full_total")
    worker.ref.tell("hold")
    with anyio.fail_after(5):
        while worker.mailbox:
            await anyio.lowlevel.checkpoint()
    for _ in range(worker.mailbox.capacity):
        worker.ref.tell("tell")

    with pytest.raises(MailboxFull):
        worker.ref.tell("tell")
    with pytest.raises(MailboxFull):
        await worker.ref.ask("ask")

    assert count("live_game_actor_mailbox_full_total") == before + 2
    assert worker.mailbox.statistics().rejected == 2
