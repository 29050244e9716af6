"""The actor system: registry, kill and stop by path, and the live snapshot."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest
from actor_helpers import (
    Bump,
    Crash,
    Hold,
    Journal,
    RecordingParent,
    Worker,
    ask_soon,
    settle,
    start_worker,
)

from livegame.actors import (
    ActorError,
    ActorExists,
    ActorNotFound,
    ActorSnapshot,
    ActorStopped,
    ActorSystem,
    FailureInfo,
)

pytestmark = pytest.mark.anyio


# Spawning and finding.


async def test_a_path_holds_one_actor(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    await start_worker(system, journal, parent, "/one")

    with pytest.raises(ActorExists, match="/one"):
        system.spawn(lambda: Worker(journal), "/one", parent=parent)


@pytest.mark.parametrize("path", ["relative", "/trailing/", ""])
async def test_a_path_must_be_absolute_without_a_trailing_slash(
    system: ActorSystem, journal: Journal, parent: RecordingParent, path: str
) -> None:
    with pytest.raises(ValueError, match="absolute"):
        system.spawn(lambda: Worker(journal), path, parent=parent)


async def test_nothing_spawns_outside_a_running_system(
    journal: Journal, parent: RecordingParent
) -> None:
    with pytest.raises(ActorError, match="not running"):
        ActorSystem().spawn(lambda: Worker(journal), "/w", parent=parent)


async def test_find_cell_and_ref_look_up_by_path(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    cell = await start_worker(system, journal, parent, "/found")

    assert system.find("/found") is cell.ref
    assert system.ref("/found") is cell.ref
    assert system.cell("/found") is cell
    assert system.find("/missing") is None
    with pytest.raises(ActorNotFound, match="no actor at /missing"):
        system.cell("/missing")
    with pytest.raises(ActorNotFound):
        system.ref("/missing")


async def test_children_are_one_level_below_in_spawn_order(
    system: ActorSystem, journal: Journal, parent: RecordingParent
) -> None:
    for path in ("/user", "/user/b", "/user/a", "/user/a/deep", "/system"):
        await start_worker(system, journal, parent, path)

    assert [c.path for c in system.children("/user")] == ["/user/b", "/user/a"]
    assert [c.path for c in system.children("/")] == ["/user", "/system"]
    assert len(system) == 5
    assert repr(system) == "<ActorSystem test actors=5>"


# Kill and stop by path.


async def test_killing_an_unknown_path_raises_actor_not_found(
    system: ActorSystem,
) -> None:
    with pytest.raises(ActorNotFound):
        system.kill("/nobody")


async def test_stop_by_path_stops_the_subtree_and_nothing_else(
    system: ActorSystem, parent: RecordingParent
) -> None:
    for path in ("/user", "/user/games", "/user/games/g1", "/users", "/other"):
        await start_worker(system, Journal(), parent, path)

    await system.stop("/user")

    assert sorted(parent.stopped) == ["/user", "/user/games", "/user/games/g1"]
    assert [c.path for c in system.cells()] == ["/users", "/other"]


async def test_leaving_the_system_stops_every_actor_and_fails_queued_asks(
    journal: Journal, parent: RecordingParent
) -> None:
    hold = Hold()

    async with anyio.create_task_group() as outside, ActorSystem() as system:
        cell = await start_worker(system, journal, parent)
        in_hand = ask_soon(outside, cell.ref, hold)
        await hold.gate.entered.wait()
        queued = ask_soon(outside, cell.ref, Bump())
        await settle()
        # Opened, but the stop is ordered before the actor runs again.
        hold.gate.open()

    assert in_hand.reply == "released"
    assert isinstance(queued.error, ActorStopped)
    assert journal.messages() == [hold]
    assert len(system) == 0
    assert system.shutting_down
    assert parent.stopped == ["/worker"]


# The snapshot.


def _without_times(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Drop the uptime and failure time, checked on their own."""
    trimmed = {k: v for k, v in snapshot.items() if k != "uptime_s"}
    if trimmed["last_failure"] is not None:
        trimmed["last_failure"] = {
            k: v for k, v in trimmed["last_failure"].items() if k != "at"
        }
    trimmed["children"] = [_without_times(child) for child in snapshot["children"]]
    return trimmed


async def test_the_snapshot_shows_the_live_tree(
    system: ActorSystem, parent: RecordingParent
) -> None:
    games = await start_worker(system, Journal(), parent, "/user/games", capacity=64)
    g1 = await start_worker(system, Journal(), parent, "/user/games/g1", capacity=8)
    await start_worker(system, Journal(), parent, "/system", capacity=4)
    await games.ref.ask(Bump())
    hold = Hold()
    g1.ref.tell(hold)
    await hold.gate.entered.wait()
    g1.ref.tell(Bump())
    g1.ref.tell(Bump())
    system.ref("/system").tell(Crash("flaky disk"))
    await settle()

    snapshot = system.snapshot().to_dict()

    def node(path: str, **fields: Any) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "path": path,
            "kind": "Worker",
            "status": "running",
            "mailbox_depth": 0,
            "mailbox_capacity": 0,
            "processed": 0,
            "restarts": 0,
            "last_failure": None,
            "children": [],
        }
        return {**defaults, **fields}

    # "/" and "/user" hold no actor: they appear so the tree is whole.
    path_only = {"kind": "path", "status": "-"}
    assert _without_times(snapshot) == node(
        "/",
        **path_only,
        children=[
            node(
                "/user",
                **path_only,
                children=[
                    node(
                        "/user/games",
                        mailbox_capacity=64,
                        processed=1,
                        children=[
                            node("/user/games/g1", mailbox_depth=2, mailbox_capacity=8)
                        ],
                    )
                ],
            ),
            node(
                "/system",
                mailbox_capacity=4,
                processed=1,
                restarts=1,
                last_failure={"type": "RuntimeError", "message": "flaky disk"},
            ),
        ],
    )
    system_node = snapshot["children"][1]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", system_node["last_failure"]["at"]
    )
    assert system_node["uptime_s"] >= 0.0
    hold.gate.open()


async def test_the_snapshot_of_a_subtree_starts_at_its_path(
    system: ActorSystem, parent: RecordingParent
) -> None:
    await start_worker(system, Journal(), parent, "/user/games")
    await start_worker(system, Journal(), parent, "/user/games/g1")

    snapshot = system.snapshot("/user/games")

    assert isinstance(snapshot, ActorSnapshot)
    assert snapshot.path == "/user/games"
    assert [child.path for child in snapshot.children] == ["/user/games/g1"]
    assert snapshot.children[0].children == ()


async def test_the_snapshot_of_an_unknown_path_raises_actor_not_found(
    system: ActorSystem,
) -> None:
    with pytest.raises(ActorNotFound):
        system.snapshot("/nowhere")


async def test_a_failure_in_the_snapshot_keeps_type_message_and_time(
    system: ActorSystem, journal: Journal
) -> None:
    parent = RecordingParent(restart=False)
    cell = await start_worker(system, journal, parent)
    cell.ref.tell(Crash("out of memory"))
    await settle()

    snapshot = system.snapshot("/worker")

    assert snapshot.status == "failed"
    assert isinstance(snapshot.last_failure, FailureInfo)
    assert snapshot.last_failure.type == "RuntimeError"
    assert snapshot.last_failure.message == "out of memory"
