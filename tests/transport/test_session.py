"""The connection state machine alone: ordering, limits and close requests."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from transport_fakes import FakeGames

from livegame.actors.game.events import (
    DrawDeclined,
    DrawOffered,
    GameEnded,
    MovePlayed,
)
from livegame.actors.game.messages import Subscribed
from livegame.errors import GameNotFound
from livegame.transport import RateLimit
from livegame.transport.errors import TooManySubscriptions
from livegame.transport.session import (
    CLOSE_OUT_OF_SYNC,
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    Session,
)


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_session(**overrides) -> Session:
    options = {
        "capacity": 8,
        "rate": RateLimit(1.0, 3),
        "flood_strikes": 2,
        "max_subscriptions": 2,
        "clock": FrozenClock(),
    }
    options.update(overrides)
    return Session(**options)


def sent(session: Session) -> list[dict]:
    frames = []
    while (frame := session.next_frame()) is not None:
        frames.append(orjson.loads(frame))
    return frames


def move(seq: int, ply: int, game: str = "g1") -> MovePlayed:
    return MovePlayed(game, seq, ply, "e2e4", "e4", "fen", None, None, 0)


def subscribed_at(seq: int, *missed: MovePlayed) -> Subscribed:
    """A subscribe reply whose state is at ``seq``, after the ``missed`` moves."""
    view = FakeGames().new_game().view()
    ply = missed[-1].ply if missed else 0
    return Subscribed(dataclasses.replace(view, seq=seq, ply=ply), missed)


def test_a_frame_within_the_rate_is_parsed_for_execution():
    session = make_session()

    frame = session.receive('{"type": "ping", "rid": "r1"}')

    assert frame is not None
    assert frame.rid == "r1"
    assert sent(session) == []


@pytest.mark.parametrize(
    ("raw", "code", "rid"),
    [
        ("{not json", "malformed_json", None),
        ('"a string"', "malformed_json", None),
        ('{"type": "teleport", "rid": "r7"}', "unknown_type", "r7"),
        ('{"rid": "r8"}', "invalid_field", "r8"),
        (
            '{"type": "move", "game": "g1", "uci": "e2e4", "rid": "r9"}',
            "invalid_field",
            "r9",
        ),
        ('{"type": "subscribe", "game": "g 1"}', "invalid_field", None),
        ('{"type": "ping", "extra": 1}', "invalid_field", None),
        ('{"type": "resign", "game": "g1", "rid": 5}', "invalid_field", None),
        (b'{"type": "ping"}', "unsupported_frame", None),
    ],
)
def test_a_bad_frame_gets_an_error_with_its_rid(raw, code, rid):
    session = make_session()

    assert session.receive(raw) is None
    [error] = sent(session)
    assert error["type"] == "error"
    assert error["error"]["code"] == code
    assert error["rid"] == rid
    assert session.close_request is None


def test_a_flood_gets_rate_limited_errors_then_a_close():
    session = make_session(rate=RateLimit(1.0, 1), flood_strikes=2)

    assert session.receive('{"type": "ping"}') is not None
    assert session.receive('{"type": "ping", "rid": "a"}') is None
    assert session.receive('{"type": "ping", "rid": "b"}') is None
    [first, second] = sent(session)
    assert (first["error"]["code"], first["rid"]) == ("rate_limited", "a")
    assert second["rid"] == "b"

    session.receive('{"type": "ping"}')

    assert session.close_request is not None
    assert session.close_request.code == CLOSE_POLICY


def test_a_frame_let_through_forgives_earlier_strikes():
    clock = FrozenClock()
    session = make_session(rate=RateLimit(1.0, 1), flood_strikes=1, clock=clock)
    session.receive('{"type": "ping"}')
    session.receive('{"type": "ping"}')

    clock.now = 1.0
    assert session.receive('{"type": "ping"}') is not None
    session.receive('{"type": "ping"}')

    assert session.close_request is None


def test_events_during_a_subscribe_wait_for_the_state():
    session = make_session()
    session.begin_subscribe("g1")
    session.deliver(move(seq=3, ply=2))

    assert sent(session) == []

    session.subscribed("g1", subscribed_at(2, move(seq=2, ply=1)), rid="s1")

    frames = sent(session)
    assert [f["type"] for f in frames] == ["state", "move", "move"]
    assert frames[0]["rid"] == "s1"
    assert [f["ply"] for f in frames[1:]] == [1, 2]


def test_events_already_in_the_state_are_not_sent_again():
    session = make_session()
    session.begin_subscribe("g1")
    session.deliver(move(seq=2, ply=1))
    session.subscribed("g1", subscribed_at(2), rid=None)
    session.deliver(move(seq=2, ply=1))

    assert [f["type"] for f in sent(session)] == ["state"]


def test_live_events_pass_in_seq_order_once():
    session = make_session()
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)
    sent(session)

    session.deliver(move(seq=2, ply=1))
    session.deliver(move(seq=2, ply=1))
    session.deliver(DrawOffered("g1", 3, 1, "white", 0))
    session.deliver(DrawDeclined("g1", 4, 1, "black", 0))

    frames = sent(session)
    assert [f["type"] for f in frames] == ["move", "draw_offer", "draw_decline"]


def test_a_missing_ply_asks_the_client_to_resubscribe():
    session = make_session()
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)

    session.deliver(move(seq=3, ply=2))

    assert session.close_request is not None
    assert session.close_request.code == CLOSE_OUT_OF_SYNC


def test_a_gap_in_seq_without_a_missing_move_is_tolerated():
    """A restarted game re-sends moves and the ending, not draw offers."""
    session = make_session()
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)

    session.deliver(move(seq=2, ply=1))
    session.deliver(move(seq=5, ply=2))

    assert session.close_request is None
    assert [f["ply"] for f in sent(session)[1:]] == [1, 2]


def test_events_of_games_not_watched_are_ignored():
    session = make_session()

    session.deliver(move(seq=2, ply=1, game="other"))

    assert sent(session) == []


def test_a_full_outbox_closes_as_a_slow_consumer_and_drops_the_rest():
    session = make_session(capacity=3)
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)

    for seq in range(2, 7):
        session.deliver(move(seq=seq, ply=seq - 1))

    assert session.close_request is not None
    assert session.close_request.code == CLOSE_SLOW_CONSUMER
    assert sent(session) == []


def test_too_many_events_held_during_a_subscribe_close_the_session():
    session = make_session(capacity=2)
    session.begin_subscribe("g1")
    for seq in range(2, 6):
        session.deliver(move(seq=seq, ply=seq - 1))

    assert session.close_request is not None
    assert session.close_request.code == CLOSE_SLOW_CONSUMER


def test_a_connection_watches_a_bounded_number_of_games():
    session = make_session(max_subscriptions=2)
    session.begin_subscribe("g1")
    session.begin_subscribe("g2")
    session.begin_subscribe("g1")

    with pytest.raises(TooManySubscriptions):
        session.begin_subscribe("g3")

    assert session.games == ("g1", "g2")


def test_an_ended_game_frees_its_slot_after_the_end_frame():
    session = make_session(max_subscriptions=1)
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)
    session.deliver(move(seq=2, ply=1))
    session.deliver(
        GameEnded("g1", 3, 1, "resign", "white", "resignation", None, None, 0)
    )

    assert [f["type"] for f in sent(session)] == ["state", "move", "end"]
    assert session.games == ()
    assert session.take_finished() == ["g1"]
    assert session.take_finished() == []
    session.begin_subscribe("g2")
    assert session.games == ("g2",)


def test_subscribing_to_a_game_already_over_sends_its_state_and_lets_go():
    session = make_session()
    session.begin_subscribe("g1")
    view = FakeGames().new_game().view()
    over = dataclasses.replace(view, seq=4, status="mate", winner="white")

    session.subscribed("g1", Subscribed(over, ()), rid="s1")

    [state] = sent(session)
    assert (state["type"], state["game"]["status"]) == ("state", "mate")
    assert session.games == ()
    assert session.take_finished() == ["g1"]


def test_an_unsubscribe_forgets_the_game_and_its_later_events():
    session = make_session()
    session.begin_subscribe("g1")
    session.subscribed("g1", subscribed_at(1), rid=None)
    sent(session)

    assert session.unsubscribe("g1") is True
    assert session.unsubscribe("g1") is False
    session.deliver(move(seq=2, ply=1))

    assert sent(session) == []
    assert session.games == ()
    assert session.take_finished() == []


def test_a_failed_subscribe_forgets_the_game_and_reports_the_error():
    session = make_session()
    session.begin_subscribe("g9")

    session.subscribe_failed("g9", GameNotFound("no game g9"), rid="s9")

    assert session.games == ()
    [error] = sent(session)
    assert (error["error"]["code"], error["rid"]) == ("game_not_found", "s9")


def test_a_closing_session_takes_no_more_frames():
    session = make_session()
    session.request_close(CLOSE_POLICY, "test")

    assert session.receive('{"type": "ping"}') is None
    session.pong(None)
    assert sent(session) == []


def test_the_repr_shows_the_state():
    session = make_session(capacity=8)
    session.pong(None)

    assert repr(session) == "<Session open games=0 outbox=1/8>"
