"""Helpers of the persistence tests: games scripted as the rules core would."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import chess
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    MovePlayed,
    Status,
)

START_MS = 1_700_000_000_000


class GameScript:
    """Makes the events of one game, as the rules core would."""

    def __init__(self, game_id: str | None = None, initial_ms: int | None = 300_000):
        self.game_id = game_id or f"g-{secrets.token_hex(6)}"
        self.board = chess.Board()
        self.seq = 1
        self.at_ms = START_MS
        self.clock = initial_ms

    def created(self) -> GameCreated:
        return GameCreated(
            self.game_id,
            1,
            "alice",
            "bob",
            self.clock,
            2_000 if self.clock else 0,
            START_MS,
        )

    def _next(self) -> tuple[int, int]:
        self.seq += 1
        self.at_ms += 1_500
        return self.seq, self.at_ms

    def move(self, uci: str) -> MovePlayed:
        move = chess.Move.from_uci(uci)
        san = self.board.san(move)
        self.board.push(move)
        seq, at_ms = self._next()
        clocks = (self.clock, self.clock) if self.clock is not None else (None, None)
        return MovePlayed(
            self.game_id,
            seq,
            self.board.ply(),
            uci,
            san,
            self.board.fen(),
            clocks[0],
            clocks[1],
            at_ms,
        )

    def offer_draw(self, by: Color) -> DrawOffered:
        seq, at_ms = self._next()
        return DrawOffered(self.game_id, seq, self.board.ply(), by, at_ms)

    def decline_draw(self, by: Color) -> DrawDeclined:
        seq, at_ms = self._next()
        return DrawDeclined(self.game_id, seq, self.board.ply(), by, at_ms)

    def end(self, status: Status, winner: Color | None, reason: str) -> GameEnded:
        seq, at_ms = self._next()
        return GameEnded(
            self.game_id,
            seq,
            self.board.ply(),
            status,
            winner,
            reason,
            self.clock,
            self.clock,
            at_ms,
        )


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0
) -> None:
    """Return once ``condition()`` holds; fail the test at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def consume_events(
    bootstrap: str, topic: str, wanted: set[str], timeout: float = 20.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until every event id in ``wanted`` came."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        # The topic may not exist yet: look for it again soon.
        metadata_max_age_ms=200,
    )
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        await asyncio.wait_for(consumer.start(), timeout)
    except BaseException:
        await consumer.stop()
        raise
    records: list[ConsumerRecord] = []
    try:
        while not wanted <= {orjson.loads(r.value)["event_id"] for r in records}:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"events missing from {topic} after {timeout}s")
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()

    return records


def seqs_by_game(records: list[ConsumerRecord]) -> dict[str, list[int]]:
    """Return each game's event seqs in the order Kafka delivered them."""
    seqs: dict[str, list[int]] = {}
    for record in records:
        value = orjson.loads(record.value)
        assert record.key.decode() == value["game_id"]
        seqs.setdefault(value["game_id"], []).append(value["seq"])
    return seqs
