"""
The Kafka producer of game events.

Every event goes to one topic (``live-game.events`` by default), keyed by
game id so a game's events share a partition and keep their order, with
``acks=all``. The producer is idempotent where the broker supports it: with
``idempotence="auto"`` it tries, and falls back to a plain producer when the
broker refuses to hand out a producer id (as the Tansu broker does). aiokafka
keeps one batch in flight per partition, so order holds either way; without
idempotence a retried batch may be written twice, which consumers drop by
``event_id``.

A row written inside a sampled trace (its ``trace_context``) is sent in a
``kafka.publish`` span, a child of the append that wrote it, which ends at
the broker's answer; the record's ``traceparent`` header names that span, so
consumers can continue the move's trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from opentelemetry.trace import Span, SpanKind, StatusCode

from livegame.errors import StorageError
from livegame.persistence._translate import kafka_errors
from livegame.persistence.outbox import OutboxRow
from livegame.telemetry import metrics
from livegame.telemetry.tracing import start_span, traceparent_of

log = structlog.get_logger("livegame.persistence.kafka")

Idempotence = Literal["auto", "on", "off"]

DEFAULT_TOPIC = "live-game.events"

# Kafka's default partitioner (murmur2 of the key), as the Java client has it.
_PARTITIONER = DefaultPartitioner()

# Games whose partition is remembered; the memory starts over beyond this.
_PARTITION_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap_servers: str
    topic: str = DEFAULT_TOPIC
    idempotence: Idempotence = "auto"
    # How long one send may take, retries included, before it fails.
    request_timeout_ms: int = 10_000
    linger_ms: int = 2
    client_id: str = "live-game-api"


class EventProducer:
    """Publish outbox rows to Kafka; start it before use, stop it after."""

    def __init__(self, config: KafkaConfig) -> None:
        self._config = config
        self._producer: AIOKafkaProducer | None = None
        # Whether the running producer is idempotent; None before start.
        self.idempotent: bool | None = None
        # The partition of each recent game, by (game, partition count):
        # the default partitioner hashes in pure Python.
        self._partitions: dict[tuple[str, int], int] = {}

    def __repr__(self) -> str:
        state = "started" if self._producer else "stopped"
        topic = self._config.topic
        return f"<EventProducer {state} {topic=} idempotent={self.idempotent}>"

    async def start(self) -> None:
        """
        Connect to the brokers.

        Raises:
            StorageError: no broker answers, or ``idempotence="on"`` and the
                broker refuses it.
        """
        if self._producer is not None:
            return
        if self._config.idempotence != "off":
            try:
                self._producer = await self._started(idempotent=True)
                self.idempotent = True
                return
            except StorageError as exc:
                if not _refused_idempotence(exc) or self._config.idempotence == "on":
                    raise
                log.warning("kafka_idempotence_unavailable", error=str(exc.__cause__))

        self._producer = await self._started(idempotent=False)
        self.idempotent = False

    async def stop(self) -> None:
        """Flush what is in flight and close; give up after the request timeout."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # stop() flushes: with the brokers gone it could wait for a long time.
        limit = self._config.request_timeout_ms / 1000 + 1.0
        try:
            await asyncio.wait_for(self._stopped(producer), limit)
        except TimeoutError:
            log.warning("kafka_producer_stop_timeout", seconds=limit)

    async def _stopped(self, producer: AIOKafkaProducer) -> None:
        with kafka_errors("stop"):
            await producer.stop()

    async def publish(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """
        Send ``rows`` in order and wait for the brokers' acknowledgements.

        Returns:
            The rows acknowledged, minus any row of a game after one of its
            rows failed, so a game's acknowledged rows are a prefix of its
            rows here.

        Raises:
            StorageError: the producer is not started or Kafka failed every
                send (a partial failure returns the acknowledged rows).
        """
        if self._producer is None:
            raise StorageError("the Kafka producer is not started", backend="kafka")

        batches = _Batches(self._producer, self._config.topic, rows)
        outcomes: list[object] = [None] * len(rows)
        try:
            with kafka_errors("metadata", topic=self._config.topic):
                partitions = sorted(
                    await self._producer.partitions_for(self._config.topic)
                )
            for index, row in enumerate(rows):
                headers = [
                    ("event_id", row.event_id.encode()),
                    ("type", row.type.encode()),
                ]
                if (published := self._publish_span(row, headers)) is not None:
                    batches.spans[index] = published
                partition = self._partition(row, partitions)
                await batches.add(index, row, partition, headers)
            await batches.submit_all()
        except StorageError as exc:
            # Rows not handed to the producer fail; those handed over are
            # still awaited below, so none is left behind in flight.
            for index in batches.unsent():
                outcomes[index] = exc
                metrics.record_kafka_publish(rows[index].type, ok=False, seconds=0.0)
                _end_span(batches.spans.pop(index, None), exc)

        for future, indexes in batches.sent:
            outcome = (await asyncio.gather(future, return_exceptions=True))[0]
            for index in indexes:
                outcomes[index] = outcome

        return _acknowledged(rows, outcomes)

    def _partition(self, row: OutboxRow, partitions: list[int]) -> int:
        """The partition of a game's events, as Kafka's default partitioner has it."""
        key = (row.game_id, len(partitions))
        partition = self._partitions.get(key)
        if partition is None:
            if len(self._partitions) >= _PARTITION_CACHE:
                self._partitions.clear()
            partition = _PARTITIONER(row.game_id.encode(), partitions, partitions)
            self._partitions[key] = partition

        return partition

    def _publish_span(
        self, row: OutboxRow, headers: list[tuple[str, bytes]]
    ) -> Span | None:
        """Start the row's ``kafka.publish`` span and name it in ``headers``."""
        if row.trace_context is None:
            return None

        published = start_span(
            "kafka.publish",
            {
                "messaging.system": "kafka",
                "messaging.operation": "publish",
                "messaging.destination.name": self._config.topic,
                "game.id": row.game_id,
                "game.seq": row.seq,
                "event.type": row.type,
            },
            traceparent=row.trace_context,
            kind=SpanKind.PRODUCER,
        )
        # Consumers continue the move's trace from here (W3C trace context).
        parent = traceparent_of(published)
        if parent is not None:
            headers.append(("traceparent", parent.encode()))

        return published

    async def _started(self, *, idempotent: bool) -> AIOKafkaProducer:
        config = self._config
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap_servers,
            client_id=config.client_id,
            acks="all",
            enable_idempotence=idempotent,
            request_timeout_ms=config.request_timeout_ms,
            linger_ms=config.linger_ms,
        )
        try:
            with kafka_errors("connect", idempotent=idempotent):
                await producer.start()
        except BaseException:
            # Failed or cancelled half-way: close what start() opened.
            await producer.stop()
            raise

        return producer


class _Batches:
    """
    Rows gathered into one record batch per partition, handed over when full.

    A batch costs the client less than half of what a send per record does.
    A game's rows share a partition, and its batches are handed over in
    order, so its rows stay in order.
    """

    def __init__(
        self, producer: AIOKafkaProducer, topic: str, rows: Sequence[OutboxRow]
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._rows = rows
        self._started = time.perf_counter()
        # Per partition: the batch being filled and the rows in it.
        self._open: dict[int, tuple[BatchBuilder, list[int]]] = {}
        # Batches handed over: the future of each and the rows in it.
        self.sent: list[tuple[asyncio.Future[object], list[int]]] = []
        # The publish span of each traced row, until the broker answers.
        self.spans: dict[int, Span] = {}

    async def add(
        self,
        index: int,
        row: OutboxRow,
        partition: int,
        headers: list[tuple[str, bytes]],
    ) -> None:
        key, value = row.game_id.encode(), row.payload.encode()
        batch, indexes = self._open.get(partition) or self._new(partition)
        if batch.append(key=key, value=value, timestamp=None, headers=headers):
            indexes.append(index)
            return

        await self._submit(partition)
        batch, indexes = self._new(partition)
        # An empty batch takes one record whatever its size.
        batch.append(key=key, value=value, timestamp=None, headers=headers)
        indexes.append(index)

    def _new(self, partition: int) -> tuple[BatchBuilder, list[int]]:
        opened: tuple[BatchBuilder, list[int]] = (self._producer.create_batch(), [])
        self._open[partition] = opened
        return opened

    async def _submit(self, partition: int) -> None:
        batch, indexes = self._open[partition]
        with kafka_errors("send", partition=partition, rows=len(indexes)):
            future = await self._producer.send_batch(
                batch, self._topic, partition=partition
            )
        del self._open[partition]
        self.sent.append((future, indexes))
        future.add_done_callback(partial(self._answered, indexes))

    def _answered(self, indexes: list[int], future: asyncio.Future[object]) -> None:
        """Count and end the batch's rows at the broker's answer."""
        error = None if future.cancelled() else future.exception()
        ok = not future.cancelled() and error is None
        seconds = time.perf_counter() - self._started
        for index in indexes:
            metrics.record_kafka_publish(self._rows[index].type, ok=ok, seconds=seconds)
            _end_span(self.spans.pop(index, None), error)

    async def submit_all(self) -> None:
        for partition in list(self._open):
            await self._submit(partition)

    def unsent(self) -> list[int]:
        """The rows not in a batch handed over."""
        sent = {index for _, indexes in self.sent for index in indexes}
        return [index for index in range(len(self._rows)) if index not in sent]


def _end_span(published: Span | None, error: BaseException | None) -> None:
    """End a publish span at the broker's answer (or the send's failure)."""
    if published is None:
        return

    if error is not None and published.is_recording():
        published.record_exception(error)
        published.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
    published.end()


def _refused_idempotence(error: StorageError) -> bool:
    """Whether the broker answered but would not give us a producer id."""
    cause = error.__cause__
    return isinstance(cause, KafkaError) and not isinstance(cause, KafkaConnectionError)


def _acknowledged(
    rows: Sequence[OutboxRow], outcomes: Sequence[object]
) -> list[OutboxRow]:
    failed_games: set[str] = set()
    acknowledged = []
    for row, outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed_games.add(row.game_id)
        elif row.game_id not in failed_games:
            acknowledged.append(row)

    if rows and not acknowledged:
        first = next(o for o in outcomes if isinstance(o, BaseException))
        raise StorageError(
            f"kafka rejected every send: {type(first).__name__}: {first}",
            backend="kafka",
            rows=len(rows),
        ) from first

    return acknowledged
