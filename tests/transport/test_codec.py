"""Strict JSON reading and the shapes the server writes."""

from __future__ import annotations

import pytest
from transport_fakes import FakeGames

from livegame.actors.game.events import GameCreated, GameEnded, MovePlayed
from livegame.actors.game.messages import OfferDraw
from livegame.transport import BoardView
from livegame.transport.codec import decode_object, iso_time, read_int, read_str
from livegame.transport.errors import InvalidField, MalformedJSON, UnknownType
from livegame.transport.inbound import (
    ActionFrame,
    MoveFrame,
    SubscribeFrame,
    parse_frame,
    rid_of,
)
from livegame.transport.outbound import board_json, event_frame, game_json


def test_a_timestamp_is_iso_8601_in_utc_with_milliseconds():
    assert iso_time(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize("raw", [b"", b"nul", b"[]", b"3", b'"x"', b"\xff", b"{} {}"])
def test_only_a_json_object_decodes(raw):
    with pytest.raises(MalformedJSON):
        decode_object(raw)


@pytest.mark.parametrize("value", [None, "1", 1.0, True, [1]])
def test_an_integer_field_takes_only_integers(value):
    with pytest.raises(InvalidField, match="'n'"):
        read_int({"n": value}, "n", low=0, high=9)


def test_a_string_field_has_a_length_limit():
    with pytest.raises(InvalidField, match="1 to 3"):
        read_str({"s": "abcd"}, "s", max_len=3)


def test_a_subscribe_frame_parses_with_and_without_since():
    assert parse_frame('{"type": "subscribe", "game": "g1"}') == SubscribeFrame(
        "g1", None, None
    )
    frame = parse_frame('{"type": "subscribe", "game": "g1", "since": 4, "rid": "a"}')
    assert frame == SubscribeFrame("g1", 4, "a")


def test_a_move_frame_parses_into_a_move():
    frame = parse_frame('{"type": "move", "game": "g1", "uci": "e7e8q", "ply": 9}')

    assert isinstance(frame, MoveFrame)
    assert (frame.move.uci, frame.move.ply) == ("e7e8q", 9)


def test_an_action_frame_names_its_command():
    frame = parse_frame('{"type": "draw_offer", "game": "g1", "rid": "r"}')

    assert frame == ActionFrame("g1", OfferDraw, "draw_offer", "r")


def test_an_unknown_type_is_named_in_the_error():
    with pytest.raises(UnknownType, match="'fly'"):
        parse_frame('{"type": "fly"}')


@pytest.mark.parametrize(
    ("raw", "rid"),
    [("{", None), ('{"rid": "r1"}', "r1"), ('{"rid": 3}', None), ("[]", None)],
)
def test_the_rid_of_a_broken_frame_is_recovered_when_possible(raw, rid):
    assert rid_of(raw) == rid


def test_a_game_view_encodes_to_the_contract_fields():
    view = FakeGames().new_game().view()

    game = game_json(view)

    assert game["clock"] == {
        "white_ms": 300_000,
        "black_ms": 300_000,
        "increment_ms": 2000,
        "running": None,
    }
    assert game["moves"] == []
    assert game["created_at"] == iso_time(view.created_at_ms)


def test_a_board_is_a_subset_of_the_game():
    view = FakeGames().new_game().view()

    board = board_json(BoardView.of(view))
    game = game_json(view)

    assert all(game[key] == value for key, value in board.items())


def test_a_move_event_becomes_a_move_frame():
    move = MovePlayed("g1", 2, 1, "e2e4", "e4", "fen", 1000, 2000, 0)

    assert event_frame(move) == {
        "type": "move",
        "game": "g1",
        "ply": 1,
        "uci": "e2e4",
        "san": "e4",
        "fen": "fen",
        "white_ms": 1000,
        "black_ms": 2000,
        "at": "1970-01-01T00:00:00.000Z",
    }


def test_an_end_event_becomes_an_end_frame():
    end = GameEnded("g1", 9, 4, "mate", "black", "checkmate", None, None, 0)

    frame = event_frame(end)

    assert frame is not None
    assert (frame["type"], frame["status"], frame["winner"]) == ("end", "mate", "black")


def test_game_creation_is_not_sent_to_watchers():
    created = GameCreated("g1", 1, "alice", "bob", None, 0, 0)

    assert event_frame(created) is None
