"""The outbox relay: committed events reach Kafka in order, and survive outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind
from persistence_helpers import GameScript, consume_events, seqs_by_game, wait_until

from livegame.actors.game.events import GameEvent, event_id
from livegame.app.embedded import free_port, kafka_server
from livegame.errors import StorageError
from livegame.persistence.committer import GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.kafka import EventProducer, KafkaConfig
from livegame.persistence.outbox import OutboxRow, outbox_backlog
from livegame.persistence.pool import create_pool
from livegame.persistence.relay import OutboxRelay, RelayConfig
from livegame.supervisor import Backoff
from livegame.telemetry import metrics, tracing

pytestmark = pytest.mark.anyio

OPENING = ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "g8f6"]


@dataclass
class Node:
    """The persistence of one node: pool, writer, journal and relay."""

    pool: asyncpg.Pool
    committer: GroupCommitter
    journal: PostgresJournal
    relay: OutboxRelay


def relay_config(sweep_interval: float = 60.0) -> RelayConfig:
    # A sweep far off: events must arrive because commits wake the relay.
    return RelayConfig(
        sweep_interval=sweep_interval,
        backoff=Backoff(initial=0.05, maximum=0.3, jitter=0.5),
    )


@asynccontextmanager
async def running_node(dsn: str, kafka: KafkaConfig) -> AsyncIterator[Node]:
    pool = await create_pool(dsn, min_size=1, max_size=5)
    relay = OutboxRelay(dsn, kafka, relay_config())
    committer = GroupCommitter(pool, listeners=[relay])
    await committer.start()
    await relay.start()
    try:
        yield Node(pool, committer, PostgresJournal(pool, committer), relay)
    finally:
        await relay.stop()
        await committer.stop()
        await pool.close()


@pytest.fixture
async def node(
    own_database: str, kafka_bootstrap: str, kafka_topic: str
) -> AsyncIterator[Node]:
    kafka = KafkaConfig(kafka_bootstrap, kafka_topic)
    async with running_node(own_database, kafka) as started:
        yield started


async def play(journal: PostgresJournal, moves: list[str]) -> list[GameEvent]:
    """Create a game and play ``moves``; return every event journaled."""
    game = GameScript()
    events: list[GameEvent] = [game.created()]
    await journal.create(game.created())
    for uci in moves:
        move = game.move(uci)
        await journal.append(game.game_id, 1, [move])
        events.append(move)
    return events


async def unpublished(pool: asyncpg.Pool, events: list[GameEvent]) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM outbox"
        " WHERE event_id = ANY($1::text[]) AND published_at IS NULL",
        [event_id(e) for e in events],
    )


async def test_committed_events_reach_kafka_in_seq_order_per_game(
    node: Node, kafka_bootstrap: str, kafka_topic: str
) -> None:
    games = await asyncio.gather(*(play(node.journal, OPENING) for _ in range(5)))
    wanted = {event_id(e) for events in games for e in events}

    records = await consume_events(kafka_bootstrap, kafka_topic, wanted)

    seqs = seqs_by_game(records)
    for events in games:
        assert seqs[events[0].game_id] == list(range(1, len(OPENING) + 2))
    await wait_until(lambda: node.relay.statistics().published == len(wanted))
    assert await outbox_backlog(node.pool) == 0


async def test_the_kafka_value_follows_the_contract(
    node: Node, kafka_bootstrap: str, kafka_topic: str
) -> None:
    events = await play(node.journal, ["f2f3"])

    records = await consume_events(
        kafka_bootstrap, kafka_topic, {event_id(e) for e in events}
    )

    move = next(r for r in records if dict(r.headers)["type"] == b"move_played")
    value = orjson.loads(move.value)
    assert value["event_id"] == event_id(events[1])
    assert value["type"] == "move_played"
    assert (value["game_id"], value["ply"], value["seq"]) == (events[1].game_id, 1, 2)
    assert value["move"]["uci"] == "f2f3"
    assert value["move"]["san"] == "f3"
    assert (value["status"], value["winner"]) == ("started", None)
    assert value["time"].endswith("+00:00")


async def test_nothing_is_marked_published_while_kafka_is_down_and_all_arrives_after(
    own_database: str, tmp_path: Path, kafka_topic: str
) -> None:
    broker = kafka_server(tmp_path)
    broker.start()
    kafka = KafkaConfig(broker.url, kafka_topic, request_timeout_ms=1_500)
    try:
        async with running_node(own_database, kafka) as node:
            before = await play(node.journal, OPENING[:2])
            await consume_events(broker.url, kafka_topic, {event_id(e) for e in before})

            broker.stop()
            failures = node.relay.statistics().failures
            during = await play(node.journal, OPENING)
            await wait_until(lambda: node.relay.statistics().failures > failures + 1)

            assert await unpublished(node.pool, during) == len(during)
            assert await outbox_backlog(node.pool) == len(during)

            # A new broker on the same port: the old one's topics are gone.
            broker.start()
            await wait_until(lambda: unpublished_is_zero(node.pool, during))
            records = await consume_events(
                broker.url, kafka_topic, {event_id(e) for e in during}
            )
    finally:
        broker.stop()

    assert seqs_by_game(records)[during[0].game_id] == list(range(1, len(during) + 1))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, sample_ratio=1.0, environ={})
    yield exporter

    tracing.shutdown_tracing()


async def test_an_event_is_published_in_the_trace_of_its_append(
    node: Node, kafka_bootstrap: str, kafka_topic: str, spans: InMemorySpanExporter
) -> None:
    game = GameScript()
    await node.journal.create(game.created())
    move = game.move("e2e4")
    with tracing.span("db.append") as append:
        await node.journal.append(game.game_id, 1, [move])

    records = await consume_events(kafka_bootstrap, kafka_topic, {event_id(move)})
    await wait_until(lambda: len(published_spans(spans)) == 1)

    (published,) = published_spans(spans)
    parent = append.get_span_context()
    assert published.context.trace_id == parent.trace_id
    assert published.parent is not None
    assert published.parent.span_id == parent.span_id
    assert published.kind is SpanKind.PRODUCER
    assert published.attributes is not None
    assert published.attributes["game.id"] == game.game_id
    assert published.attributes["event.type"] == "move_played"
    # The record names the publish span, so consumers continue the trace.
    headers = dict(record_of(records, event_id(move)).headers)
    ids = published.context
    version, trace_id, span_id, flags = headers["traceparent"].decode().split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{ids.trace_id:032x}",
        f"{ids.span_id:016x}",
    )
    assert int(flags, 16) & 0x01  # sampled


async def test_an_untraced_event_gets_no_span_and_no_traceparent(
    node: Node, kafka_bootstrap: str, kafka_topic: str, spans: InMemorySpanExporter
) -> None:
    events = await play(node.journal, ["d2d4"])

    wanted = {event_id(e) for e in events}
    records = await consume_events(kafka_bootstrap, kafka_topic, wanted)

    ours = [dict(r.headers) for r in records]
    ours = [h for h in ours if h["event_id"].decode() in wanted]
    assert len(ours) == len(wanted)
    assert all("traceparent" not in headers for headers in ours)
    assert published_spans(spans) == []


async def test_an_unsampled_append_leaves_no_trace_context_to_publish(
    node: Node, kafka_bootstrap: str, kafka_topic: str
) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, sample_ratio=0.0, environ={})
    try:
        game = GameScript()
        await node.journal.create(game.created())
        move = game.move("c2c4")
        with tracing.span("db.append"):
            await node.journal.append(game.game_id, 1, [move])
        records = await consume_events(kafka_bootstrap, kafka_topic, {event_id(move)})
        stored = await node.pool.fetchval(
            "SELECT trace_context FROM outbox WHERE event_id = $1", event_id(move)
        )
    finally:
        tracing.shutdown_tracing()

    assert stored is None
    assert "traceparent" not in dict(record_of(records, event_id(move)).headers)
    assert exporter.get_finished_spans() == ()


def record_of(records: list[ConsumerRecord], wanted: str) -> ConsumerRecord:
    return next(r for r in records if dict(r.headers)["event_id"].decode() == wanted)


def published_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "kafka.publish"]


async def unpublished_is_zero(pool: asyncpg.Pool, events: list[GameEvent]) -> bool:
    return await unpublished(pool, events) == 0


def published_moves() -> float:
    labels = {"event_type": "move_played", "status": "ok"}
    value = metrics.REGISTRY.get_sample_value("kafka_events_published_total", labels)
    return value or 0.0


async def test_each_published_event_is_counted(
    node: Node, kafka_bootstrap: str, kafka_topic: str
) -> None:
    before = published_moves()

    events = await play(node.journal, OPENING[:3])
    await consume_events(kafka_bootstrap, kafka_topic, {event_id(e) for e in events})

    await wait_until(lambda: published_moves() == before + 3)


async def test_published_rows_older_than_the_retention_are_deleted(
    own_database: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    pool = await create_pool(own_database, min_size=1, max_size=2)
    # Two rows a statement: three rows take two statements in one round.
    config = RelayConfig(
        sweep_interval=0.05, retention=timedelta(0), prune_interval=0, prune_chunk=2
    )
    relay = OutboxRelay(own_database, KafkaConfig(kafka_bootstrap, kafka_topic), config)
    committer = GroupCommitter(pool, listeners=[relay])
    await committer.start()
    await relay.start()
    try:
        events = await play(PostgresJournal(pool, committer), OPENING[:2])
        await wait_until(lambda: outbox_is_empty(pool))
    finally:
        await relay.stop()
        await committer.stop()
        await pool.close()

    assert relay.statistics().published == len(events)


async def outbox_is_empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_rows_committed_while_the_relay_was_away_go_out_when_it_starts(
    own_database: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    pool = await create_pool(own_database, min_size=1, max_size=2)
    committer = GroupCommitter(pool)
    await committer.start()
    try:
        events = await play(PostgresJournal(pool, committer), OPENING[:3])
    finally:
        await committer.stop()
        await pool.close()

    relay = OutboxRelay(own_database, KafkaConfig(kafka_bootstrap, kafka_topic))
    await relay.start()
    try:
        records = await consume_events(
            kafka_bootstrap, kafka_topic, {event_id(e) for e in events}
        )
    finally:
        await relay.stop()

    assert len(records) == len(events)


async def test_one_relay_leads_and_another_takes_over_when_it_stops(
    own_database: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    kafka = KafkaConfig(kafka_bootstrap, kafka_topic)
    first = OutboxRelay(own_database, kafka, relay_config(sweep_interval=0.1))
    second = OutboxRelay(own_database, kafka, relay_config(sweep_interval=0.1))
    await first.start()
    await wait_until(lambda: first.statistics().leader)
    await second.start()
    try:
        await wait_until(lambda: second.statistics().state == "standby")
        assert first.statistics().leader

        await first.stop()
        await wait_until(lambda: second.statistics().leader)
    finally:
        await first.stop()
        await second.stop()


async def test_rows_beyond_one_record_batch_arrive_whole_and_in_order(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Many rows of a few games fill several batches per partition."""
    padding = "x" * 400
    rows = [
        OutboxRow(
            id=n,
            event_id=f"g{n % 3}:{n // 3 + 1}",
            game_id=f"g{n % 3}",
            seq=n // 3 + 1,
            type="move_played",
            payload=orjson.dumps(
                {
                    "event_id": f"g{n % 3}:{n // 3 + 1}",
                    "game_id": f"g{n % 3}",
                    "seq": n // 3 + 1,
                    "padding": padding,
                }
            ).decode(),
        )
        for n in range(300)
    ]
    producer = EventProducer(KafkaConfig(kafka_bootstrap, kafka_topic))
    await producer.start()
    try:
        acknowledged = await producer.publish(rows)
    finally:
        await producer.stop()

    assert acknowledged == rows
    records = await consume_events(
        kafka_bootstrap, kafka_topic, {row.event_id for row in rows}
    )
    assert seqs_by_game(records) == {
        f"g{game}": list(range(1, 101)) for game in range(3)
    }
    assert [h for h in records[0].headers if h[0] == "type"] == [
        ("type", b"move_played")
    ]


async def test_the_producer_falls_back_when_the_broker_refuses_idempotence(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = EventProducer(KafkaConfig(kafka_bootstrap, kafka_topic))
    await producer.start()
    await producer.stop()

    assert producer.idempotent is False


async def test_the_producer_refuses_to_start_when_idempotence_is_required(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = EventProducer(
        KafkaConfig(kafka_bootstrap, kafka_topic, idempotence="on")
    )

    with pytest.raises(StorageError):
        await producer.start()


async def test_an_unreachable_broker_is_a_storage_error(kafka_topic: str) -> None:
    producer = EventProducer(KafkaConfig(f"127.0.0.1:{free_port()}", kafka_topic))

    with pytest.raises(StorageError):
        await producer.start()
