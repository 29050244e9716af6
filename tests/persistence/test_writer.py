"""The writer and relay actors under /system/persistence, in a running tree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from persistence_helpers import GameScript, consume_events, wait_until

from livegame.actors import ActorSystem
from livegame.actors.game.events import GameEvent, event_id
from livegame.errors import LiveGameError
from livegame.persistence.committer import GroupCommitConfig
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.kafka import KafkaConfig
from livegame.persistence.pool import create_pool
from livegame.persistence.relay import RelayConfig
from livegame.persistence.writer import Persistence, persistence_children
from livegame.supervisor import ChildSpec, Strategy, Supervisor, spawn_root

pytestmark = pytest.mark.anyio

WRITER = "/system/persistence/writer"
RELAY = "/system/persistence/relay"


@dataclass
class Tree:
    system: ActorSystem
    pool: asyncpg.Pool
    persistence: Persistence
    journal: PostgresJournal


@pytest.fixture
async def tree(
    own_database: str, kafka_bootstrap: str, kafka_topic: str
) -> AsyncIterator[Tree]:
    pool = await create_pool(own_database, min_size=1, max_size=5)
    try:
        async with ActorSystem("persistence-test") as system:
            persistence = persistence_children(
                pool,
                own_database,
                GroupCommitConfig(),
                KafkaConfig(kafka_bootstrap, kafka_topic),
                RelayConfig(sweep_interval=60.0),
                resolve=system.ref,
            )
            await spawn_root(system, lambda: _root(persistence))
            yield Tree(
                system, pool, persistence, PostgresJournal(pool, persistence.sink)
            )
    finally:
        await pool.close()


def _root(persistence: Persistence) -> Supervisor:
    branch = Supervisor(persistence.specs, strategy=Strategy.REST_FOR_ONE)
    system = Supervisor([ChildSpec("persistence", lambda: branch)])
    return Supervisor([ChildSpec("system", lambda: system)])


async def play(journal: PostgresJournal, moves: list[str]) -> list[GameEvent]:
    game = GameScript()
    events: list[GameEvent] = [game.created()]
    await journal.create(game.created())
    for uci in moves:
        events.append(game.move(uci))
        await journal.append(game.game_id, 1, [events[-1]])
    return events


async def test_the_writer_and_the_relay_run_at_their_paths(tree: Tree) -> None:
    assert tree.system.find(WRITER) is not None
    assert tree.system.find(RELAY) is not None


async def test_writes_through_the_writer_actor_commit_and_reach_kafka(
    tree: Tree, kafka_bootstrap: str, kafka_topic: str
) -> None:
    games = await asyncio.gather(
        *(play(tree.journal, ["d2d4", "d7d5", "c2c4"]) for _ in range(10))
    )

    wanted = {event_id(e) for events in games for e in events}
    records = await consume_events(kafka_bootstrap, kafka_topic, wanted)
    assert len(records) == len(wanted)


async def test_a_killed_writer_comes_back_and_loses_no_acknowledged_write(
    tree: Tree,
) -> None:
    games = [GameScript() for _ in range(30)]
    await asyncio.gather(*(tree.journal.create(g.created()) for g in games))

    async def move(game: GameScript) -> GameEvent | None:
        event = game.move("e2e4")
        try:
            await tree.journal.append(game.game_id, 1, [event])
        except LiveGameError:
            return None
        return event

    appends = [asyncio.ensure_future(move(g)) for g in games]
    # Killed once the appends have reached its mailbox or its committer.
    asyncio.get_running_loop().call_soon(tree.system.kill, WRITER)
    acknowledged = [e for e in await asyncio.gather(*appends) if e is not None]

    stored = await tree.pool.fetchval(
        "SELECT count(*) FROM game_moves WHERE game_id = ANY($1::text[])",
        [e.game_id for e in acknowledged],
    )
    assert stored == len(acknowledged)
    late = GameScript()
    await wait_until(lambda: writes(tree.journal, late))


async def writes(journal: PostgresJournal, game: GameScript) -> bool:
    try:
        await journal.create(game.created())
    except LiveGameError:
        return False
    return True


async def test_flush_commits_what_is_queued_and_empties_the_outbox(
    tree: Tree,
) -> None:
    await play(tree.journal, ["g1f3", "g8f6"])

    assert await tree.persistence.flush(timeout=20.0) == 0
