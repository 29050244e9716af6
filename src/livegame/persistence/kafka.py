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
from opentelemetry.trace import Span, SpanKind, StatusCode

from livegame.errors import StorageError
from livegame.persistence._translate import kafka_errors
from livegame.persistence.outbox import OutboxRow
from livegame.telemetry import metrics
from livegame.telemetry.tracing import start_span, traceparent_of

log = structlog.get_logger("livegame.persistence.kafka")

Idempotence = Literal["auto", "on", "off"]

DEFAULT_TOPIC = "live-game.events"


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

        sends: list[asyncio.Future[object]] = []
        refused: list[BaseException] = []
        try:
            for row in rows:
                sends.append(await self._send(self._producer, row))
        except StorageError as exc:
            # The rows after this one were never handed to the producer.
            refused = [exc] * (len(rows) - len(sends))
            for row in rows[len(sends) :]:
                metrics.record_kafka_publish(row.type, ok=False, seconds=0.0)

        # Wait for every send handed over, so none is left behind in flight.
        outcomes: list[object] = await asyncio.gather(*sends, return_exceptions=True)

        return _acknowledged(rows, [*outcomes, *refused])

    async def _send(
        self, producer: AIOKafkaProducer, row: OutboxRow
    ) -> asyncio.Future[object]:
        headers = [("event_id", row.event_id.encode()), ("type", row.type.encode())]
        published = self._publish_span(row, headers)
        started = time.perf_counter()
        try:
            with kafka_errors("send", game_id=row.game_id, seq=row.seq):
                future: asyncio.Future[object] = await producer.send(
                    self._config.topic,
                    value=row.payload.encode(),
                    key=row.game_id.encode(),
                    headers=headers,
                )
        except BaseException as exc:
            _end_span(published, exc)
            raise

        future.add_done_callback(partial(_record, row.type, started, published))

        return future

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


def _record(
    event_type: str,
    started: float,
    published: Span | None,
    acked: asyncio.Future[object],
) -> None:
    error = None if acked.cancelled() else acked.exception()
    ok = not acked.cancelled() and error is None
    seconds = time.perf_counter() - started
    metrics.record_kafka_publish(event_type, ok=ok, seconds=seconds)
    _end_span(published, error)


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
