"""
``livegame bench actors``: the actor runtime's speed on one core.

Prints tells per second into one actor, the ask round trip (p50/p99), and
moves per second through game actors that journal to memory. Everything runs
in this one process on one event loop, so the figures are one core's.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time

import anyio

from livegame.actors import Actor, ActorRef, ActorSystem
from livegame.actors.game.actor import GameActors
from livegame.actors.game.events import GameCreated
from livegame.actors.game.journal import InMemoryJournal
from livegame.actors.game.messages import PlayMove
from livegame.app.records import game_records
from livegame.app.stats import percentile
from livegame.supervisor import (
    ChildSpec,
    Games,
    GamesSupervisor,
    Supervisor,
    spawn_root,
)
from livegame.telemetry.logging import configure_logging


class _Counter(Actor[int]):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: int) -> int:
        self.count += 1
        return self.count


async def _tells_per_second(ref: ActorRef[int], seconds: float) -> float:
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for i in range(1000):
            ref.tell(i)
        sent += 1000
        # Let the actor drain what was sent, as a busy sender would.
        await asyncio.sleep(0)
    await ref.ask(0)

    return sent / (time.perf_counter() - started)


async def _ask_latencies(ref: ActorRef[int], seconds: float) -> list[float]:
    samples = []
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter
    while clock() < deadline:
        for i in range(100):
            t0 = clock()
            await ref.ask(i)
            samples.append(clock() - t0)

    return samples


async def _moves_per_second(
    system: ActorSystem, journal: InMemoryJournal, seconds: float, concurrency: int
) -> tuple[float, int]:
    games = Games(system, "/games")
    records = game_records()
    serial = itertools.count()
    played = 0
    deadline = time.perf_counter() + seconds

    async def play_games(worker: int) -> None:
        nonlocal played
        while time.perf_counter() < deadline:
            game_id = f"c{concurrency}-{worker}-{next(serial)}"
            await journal.create(
                GameCreated(game_id, 1, "w", "b", None, 0, int(time.time() * 1000))
            )
            ref = await games.activate(game_id)
            moves = records[worker % len(records)]
            for ply, uci in enumerate(moves):
                player = "w" if ply % 2 == 0 else "b"
                await ref.ask(PlayMove(player, uci, ply))
            played += len(moves)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for worker in range(concurrency):
            tg.start_soon(play_games, worker)

    return played / (time.perf_counter() - started), played


async def _bench(seconds: float) -> None:
    journal = InMemoryJournal()
    game = GameActors(journal, epoch=1)

    async with ActorSystem("bench") as system:
        await spawn_root(
            system,
            lambda: Supervisor(
                [
                    ChildSpec("counter", _Counter, capacity=10_000_000),
                    ChildSpec("games", lambda: GamesSupervisor(game), capacity=100_000),
                ]
            ),
        )
        counter: ActorRef[int] = system.ref("/counter")
        gc.collect()
        gc.freeze()

        rate = await _tells_per_second(counter, seconds)
        print(f"tells            {rate:>12,.0f} /s")

        samples = sorted(await _ask_latencies(counter, seconds))
        p50, p99 = (percentile(samples, f) * 1e6 for f in (0.5, 0.99))
        print(
            f"ask round trip   p50 {p50:.1f} µs  p99 {p99:.1f} µs  (n={len(samples)})"
        )

        for concurrency in (1, 100):
            rate, played = await _moves_per_second(
                system, journal, seconds, concurrency
            )
            print(
                f"game moves       {rate:>12,.0f} /s  "
                f"({concurrency} games at once, {played} moves)"
            )


def run(seconds: float = 2.0) -> int:
    """Run the benchmark and print its figures."""
    try:
        import uvloop  # noqa: F401

        options = {"use_uvloop": True}
        loop_name = "uvloop"
    except ImportError:
        options = {}
        loop_name = "asyncio"
    # One INFO line per ended game would be measured along with the games.
    configure_logging("WARNING")
    print(f"livegame bench actors: one process, one event loop ({loop_name})")
    anyio.run(_bench, seconds, backend="asyncio", backend_options=options)

    return 0
