"""The root of a node's tree, and the node stopping when the root gives up."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import pytest
from supervision_helpers import (
    Child,
    Crash,
    Echo,
    Hold,
    Outcome,
    Tree,
    ask_soon,
    settle,
)

from livegame.actors import ActorStopped, ActorSystem, NodeStopped, Status
from livegame.supervisor import (
    Backoff,
    ChildSpec,
    Intensity,
    RestartIntensityExceeded,
    Supervisor,
    spawn_root,
)

pytestmark = pytest.mark.anyio

NO_DELAY = Backoff(initial=0.0, jitter=0.0)


def fragile_root(tree: Tree) -> Supervisor:
    """A root that gives up at the second restart of its only child."""
    return Supervisor(
        [ChildSpec("worker", lambda: Child(tree))],
        intensity=Intensity(max_restarts=1, within=60.0),
        backoff=NO_DELAY,
    )


async def test_spawn_root_returns_once_the_whole_tree_has_started(
    system: ActorSystem, tree: Tree
) -> None:
    def user() -> Supervisor:
        return Supervisor([ChildSpec(n, lambda: Child(tree)) for n in ("a", "b")])

    root = await spawn_root(
        system,
        lambda: Supervisor(
            [ChildSpec("user", user), ChildSpec("system", lambda: Child(tree))]
        ),
    )

    assert root is system.ref("/")
    assert sorted(c.path for c in system.cells()) == [
        "/",
        "/system",
        "/user",
        "/user/a",
        "/user/b",
    ]
    assert all(c.status is Status.RUNNING for c in system.cells())
    assert tree.hooks("/user/a") == tree.hooks("/system") == ["start"]


async def test_the_root_can_live_below_the_top(system: ActorSystem, tree: Tree) -> None:
    root = await spawn_root(
        system, lambda: Supervisor([ChildSpec("w", lambda: Child(tree))]), "/node"
    )

    assert root.path == "/node"
    assert await system.ref("/node/w").ask(Echo("deep")) == "deep"


async def run_fragile_node(
    tree: Tree, name: str = "node", *, then: Any = anyio.sleep_forever
) -> ActorSystem:
    """Run a node whose root gives up at once; ``then(system)`` ends the body."""
    async with ActorSystem(name) as system:
        await spawn_root(system, lambda: fragile_root(tree))
        system.ref("/worker").tell(Crash())
        system.ref("/worker").tell(Crash())
        await then(system)

    return system


async def test_a_root_past_its_budget_stops_the_node_with_node_stopped(
    tree: Tree, logs: list[dict[str, Any]]
) -> None:
    async def forever(system: ActorSystem) -> None:
        await anyio.sleep_forever()

    with pytest.raises(NodeStopped) as raised:
        await run_fragile_node(tree, "n1", then=forever)

    assert isinstance(raised.value.__cause__, RestartIntensityExceeded)
    assert raised.value.context == {"node": "n1"}
    events = [entry["event"] for entry in logs]
    assert "root_supervisor_failed" in events
    assert "node_stopping" in events
    # Every actor ran its stop hook on the way out.
    assert tree.hooks("/worker")[-1] == "stop"


async def test_the_node_stops_even_if_its_owner_waits_for_the_failure(
    tree: Tree,
) -> None:
    errors: list[BaseException] = []

    async def wait_failed(system: ActorSystem) -> None:
        errors.append(await system.wait_failed())

    with pytest.raises(NodeStopped):
        await run_fragile_node(tree, then=wait_failed)

    [error] = errors
    assert isinstance(error, RestartIntensityExceeded)


async def test_the_node_stops_when_the_body_ends_without_a_checkpoint(
    tree: Tree,
) -> None:
    async def settle_shielded(system: ActorSystem) -> None:
        # The failure lands while the body runs, but the body reaches no
        # checkpoint after it before it ends.
        with anyio.CancelScope(shield=True):
            await settle()

    with pytest.raises(NodeStopped):
        await run_fragile_node(tree, then=settle_shielded)


async def test_an_asker_outside_the_node_hears_at_once_when_it_stops(
    tree: Tree,
) -> None:
    hold = Hold()
    outcomes: list[Outcome] = []

    def root() -> Supervisor:
        return Supervisor(
            [
                ChildSpec("busy", lambda: Child(tree)),
                ChildSpec("worker", lambda: Child(tree)),
            ],
            intensity=Intensity(max_restarts=0, within=60.0),
        )

    async def run_node(outside: anyio.abc.TaskGroup) -> None:
        async with ActorSystem() as system:
            await spawn_root(system, root)
            outcomes.append(ask_soon(outside, system.ref("/busy"), hold))
            await hold.gate.entered.wait()
            system.ref("/worker").tell(Crash())
            await anyio.sleep_forever()

    # The asker lives outside the node, as an HTTP handler does; it hears as
    # the node stops, not from its own ask timeout seconds later.
    with anyio.fail_after(2):
        async with anyio.create_task_group() as outside:
            with pytest.raises(NodeStopped):
                await run_node(outside)

    [outcome] = outcomes
    assert isinstance(outcome.error, ActorStopped)


async def test_a_root_that_stops_on_its_own_does_not_stop_the_node(
    system: ActorSystem, tree: Tree
) -> None:
    await spawn_root(system, lambda: fragile_root(tree))

    system.cell("/").stop()
    await settle()

    # The root took its child with it; the node itself runs on (leaving the
    # fixture's system would raise NodeStopped otherwise).
    assert len(system) == 0
    assert tree.hooks("/worker") == ["start", "stop"]
