"""Tests of the Fischer clock: pure arithmetic on milliseconds, no event loop."""

from __future__ import annotations

import pytest

from livegame.actors.game.clock import Clock, other
from livegame.actors.game.messages import ClockView


def started(initial_ms: int = 60_000, increment_ms: int = 0, at_ms: int = 0) -> Clock:
    """Return a clock after both untimed first moves, White's time running."""
    return Clock.new(initial_ms, increment_ms).press("white", 0).press("black", at_ms)


def test_other_gives_the_opponent() -> None:
    assert other("white") == "black"
    assert other("black") == "white"


@pytest.mark.parametrize(("initial_ms", "increment_ms"), [(0, 0), (-1, 0), (1, -1)])
def test_a_clock_needs_positive_time_and_no_negative_increment(
    initial_ms: int, increment_ms: int
) -> None:
    with pytest.raises(ValueError, match="initial_ms"):
        Clock.new(initial_ms, increment_ms)


def test_a_new_clock_does_not_run() -> None:
    clock = Clock.new(60_000, 2_000)

    assert clock.running is None
    assert clock.deadline_ms() is None
    assert clock.flagged(10**12) is None
    assert clock.remaining("white", 10**12) == 60_000


def test_the_first_move_of_each_side_costs_nothing_and_earns_nothing() -> None:
    clock = Clock.new(60_000, 2_000).press("white", 5_000)

    assert clock.running is None
    assert (clock.white_ms, clock.black_ms) == (60_000, 60_000)

    clock = clock.press("black", 9_000)

    assert (clock.white_ms, clock.black_ms) == (60_000, 60_000)
    assert clock.running == "white"
    assert clock.since_ms == 9_000


def test_time_runs_for_the_side_to_move_only() -> None:
    clock = started(at_ms=1_000)

    assert clock.remaining("white", 1_250) == 59_750
    assert clock.remaining("black", 1_250) == 60_000


def test_a_move_charges_the_exact_milliseconds_and_adds_the_increment() -> None:
    clock = started(increment_ms=2_000, at_ms=1_000).press("white", 1_001)

    assert clock.white_ms == 60_000 - 1 + 2_000
    assert clock.running == "black"
    assert clock.since_ms == 1_001

    clock = clock.press("black", 4_334)

    assert clock.black_ms == 60_000 - 3_333 + 2_000
    assert clock.running == "white"


def test_time_left_never_goes_below_zero() -> None:
    clock = started(initial_ms=1_000)

    assert clock.remaining("white", 5_000) == 0
    assert clock.view(5_000).white_ms == 0


def test_a_clock_read_before_it_started_charges_nothing() -> None:
    clock = started(at_ms=10_000)

    assert clock.remaining("white", 9_000) == 60_000


def test_the_deadline_is_when_the_running_side_reaches_zero() -> None:
    clock = started(initial_ms=3_000, increment_ms=1_000, at_ms=100).press("white", 600)

    # White kept 2_500 and earned 1_000; Black's 3_000 now run from 600.
    assert clock.deadline_ms() == 3_600


def test_the_flag_falls_exactly_at_the_deadline() -> None:
    clock = started(initial_ms=3_000, at_ms=100)

    assert clock.flagged(3_099) is None
    assert clock.flagged(3_100) == "white"


def test_stopping_charges_the_running_side_and_stops_time() -> None:
    clock = started(at_ms=0).stop(1_500)

    assert clock.running is None
    assert clock.white_ms == 58_500
    assert clock.remaining("white", 99_000) == 58_500
    assert clock.deadline_ms() is None


def test_a_press_with_recorded_times_keeps_them() -> None:
    clock = started().pressed("white", 700, 1_234, 5_678)

    assert (clock.white_ms, clock.black_ms) == (1_234, 5_678)
    assert (clock.running, clock.since_ms, clock.presses) == ("black", 700, 3)


def test_a_recorded_press_obeys_the_untimed_first_moves() -> None:
    clock = Clock.new(60_000, 0).pressed("white", 5, 60_000, 60_000)

    assert clock.running is None
    assert clock.pressed("black", 9, 60_000, 60_000).running == "white"


def test_a_stop_with_recorded_times_keeps_them() -> None:
    clock = started().stopped(900, 0, 60_000)

    assert (clock.white_ms, clock.running, clock.since_ms) == (0, None, 900)


def test_the_view_shows_times_at_a_moment_and_who_runs() -> None:
    clock = started(increment_ms=500, at_ms=0)

    assert clock.view(20) == ClockView(
        white_ms=59_980, black_ms=60_000, increment_ms=500, running="white"
    )
