"""The outbox payload is the Kafka contract's JSON value, for every event type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from persistence_helpers import START_MS, GameScript

from livegame.persistence.codec import (
    decode_json,
    encode_json,
    iso_time,
    outbox_payload,
    to_datetime,
    to_ms,
)

CONTRACT_FIELDS = {"event_id", "type", "game_id", "ply", "status", "winner", "time"}


def test_times_round_trip_to_the_millisecond() -> None:
    moment = to_datetime(START_MS + 7)

    assert moment.tzinfo is UTC
    assert to_ms(moment) == START_MS + 7
    assert to_ms(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000


def test_a_created_game_carries_its_players_and_clock() -> None:
    game = GameScript(initial_ms=180_000)

    payload = outbox_payload(game.created(), "started", None)

    assert payload.keys() >= CONTRACT_FIELDS
    assert (payload["type"], payload["ply"], payload["seq"]) == ("game_created", 0, 1)
    assert (payload["white"], payload["black"]) == ("alice", "bob")
    assert payload["clock"] == {"initial_ms": 180_000, "increment_ms": 2_000}


def test_a_move_carries_the_move_and_the_clocks() -> None:
    game = GameScript()
    move = game.move("e2e4")

    payload = outbox_payload(move, "started", None)

    assert payload["event_id"] == f"{game.game_id}:2"
    assert payload["move"] == {"uci": "e2e4", "san": "e4", "fen": move.fen}
    assert payload["clock"] == {"white_ms": 300_000, "black_ms": 300_000}
    assert payload["time"] == to_datetime(move.at_ms).isoformat(timespec="milliseconds")


def test_an_ending_carries_status_winner_and_reason() -> None:
    game = GameScript()
    ended = game.end("resign", "white", "resignation")

    payload = outbox_payload(ended, "resign", "white")

    assert (payload["status"], payload["winner"]) == ("resign", "white")
    assert payload["reason"] == "resignation"


def test_draw_offers_say_who_made_them() -> None:
    game = GameScript()

    assert outbox_payload(game.offer_draw("black"), "started", None)["by"] == "black"
    assert outbox_payload(game.decline_draw("white"), "started", None)["by"] == "white"


def test_a_game_without_clock_has_no_clock() -> None:
    game = GameScript(initial_ms=None)

    assert outbox_payload(game.created(), "started", None)["clock"] is None
    assert outbox_payload(game.move("e2e4"), "started", None)["clock"] is None


def test_payloads_survive_json_encoding() -> None:
    game = GameScript()
    payload = outbox_payload(game.move("g1f3"), "started", None)

    assert decode_json(encode_json(payload)) == payload


@pytest.mark.parametrize(
    "ms", [0, 999, -1, -1_001, START_MS, START_MS + 59_999, 253_402_300_799_999]
)
def test_iso_time_formats_as_isoformat_with_milliseconds(ms: int) -> None:
    assert iso_time(ms) == to_datetime(ms).isoformat(timespec="milliseconds")
